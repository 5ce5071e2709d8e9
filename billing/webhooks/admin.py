"""Backoffice: merchants' webhook endpoints (health, settings, secret rotation, test events,
redelivery) and their deliveries with every attempt; the "Webhook endpoints failing" card.

Every change is a modal action calling one service of billing.webhooks.services. A secret is
shown once, on the page that answers its rotation, never again and never in the audit log.
"""

import re

from django import forms
from django.contrib import admin, messages
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode

from billing.webhooks import services
from billing.webhooks.backoffice import (
    AUTO_DISABLED,
    FAILING,
    delivery_status_badge,
    endpoint_status_badge,
    endpoints_auto_disabled,
    endpoints_failing,
    success_rate,
    with_recent_success,
)
from billing.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from core.admin import ReadOnlyAdmin
from core.backoffice.actions import ModalAction, ModalActionsMixin
from core.backoffice.dashboard import CardItem, Metric, dashboard
from core.backoffice.display import badge, pretty_json, when
from core.backoffice.search import IdSearchMixin, parse_uuid
from core.backoffice.timeline import admin_change_url
from core.events.registry import ANY, REGISTRY
from core.events.services import event_envelope
from core.models import AuditEntry

RECENT_ON_PAGE = 20  # deliveries listed on an endpoint's page
CARD_ITEMS = 5
ENDPOINT_CHANGE = "webhooks.change_webhookendpoint"  # settings, secret, enable / disable
DELIVERY_CHANGE = "webhooks.change_webhookdelivery"  # redeliver, send a test event


def _changelist_url(model, **query) -> str:
    opts = model._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    return f"{url}?{urlencode(query)}" if query else url


def _link(obj, label) -> str:
    url = admin_change_url(obj._meta.app_label, obj._meta.model_name, obj.pk)
    return format_html('<a href="{}">{}</a>', url, label) if url else str(label)


def _short_url(url: str, limit: int = 70) -> str:
    return url if len(url) <= limit else f"{url[: limit - 1]}…"


# --- dashboard -----------------------------------------------------------------------------


@dashboard.card(
    "webhook_endpoints_failing",
    title="Webhook endpoints failing",
    order=65,
    permission="webhooks.view_webhookendpoint",
)
def webhook_endpoints_card(request) -> Metric:
    disabled = list(
        endpoints_auto_disabled().select_related("organization").order_by("-disabled_at")[: CARD_ITEMS + 1]
    )
    failing = list(
        endpoints_failing().select_related("organization").order_by("failing_since")[: CARD_ITEMS + 1]
    )
    n_disabled = endpoints_auto_disabled().count() if len(disabled) > CARD_ITEMS else len(disabled)
    n_failing = endpoints_failing().count() if len(failing) > CARD_ITEMS else len(failing)
    items = [
        CardItem(
            f"disabled {e.disabled_at:%Y-%m-%d %H:%M} · {e.organization} · {_short_url(e.url, 40)}",
            admin_change_url("webhooks", "webhookendpoint", e.pk),
        )
        for e in disabled
    ] + [
        CardItem(
            f"failing since {e.failing_since:%Y-%m-%d %H:%M} · {e.organization} · {_short_url(e.url, 40)}",
            admin_change_url("webhooks", "webhookendpoint", e.pk),
        )
        for e in failing
    ]
    if not n_disabled and not n_failing:
        return Metric(
            "0",
            hint="every enabled endpoint is delivering",
            url=_changelist_url(WebhookEndpoint),
            tone="good",
        )
    hint = f"{n_failing} failing now · {n_disabled} disabled automatically after a day of failures"
    url = _changelist_url(WebhookEndpoint, health="disabled_auto" if n_disabled else "failing")
    return Metric(
        f"{n_failing + n_disabled:,}",
        hint=hint,
        url=url,
        tone="bad" if n_disabled else "warn",
        items=tuple(items[:CARD_ITEMS]),
    )


# --- forms and actions on an endpoint ---------------------------------------------------------


class EndpointSettingsForm(forms.Form):
    url = forms.CharField(label="URL", max_length=WebhookEndpoint._meta.get_field("url").max_length)
    event_types = forms.CharField(
        label="Event types",
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=f"Comma or space separated, e.g. order.paid, subscription.canceled; {ANY} for every event.",
    )
    description = forms.CharField(required=False, max_length=500)

    def clean_event_types(self) -> list[str]:
        types = [t for t in re.split(r"[\s,]+", self.cleaned_data["event_types"]) if t]
        if not types:
            raise forms.ValidationError("Choose at least one event type.")
        return list(dict.fromkeys(types))  # keep the order, drop repeats


class ReasonForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=200,
        help_text="Shown on the endpoint and audited.",
    )


class EditEndpoint(ModalAction):
    name = "edit"
    label = "Edit settings"
    title = "Edit the endpoint's settings"
    permission = ENDPOINT_CHANGE
    form_class = EndpointSettingsForm
    submit_label = "Save"
    success_message = "Endpoint settings saved."

    def get_initial(self, request, obj: WebhookEndpoint):
        return {"url": obj.url, "event_types": ", ".join(obj.event_types), "description": obj.description}

    def perform(self, request, obj: WebhookEndpoint, form):
        changes = {field: value for field, value in form.cleaned_data.items() if value != getattr(obj, field)}
        if not changes:
            return obj
        return services.webhook_endpoint_update(endpoint=obj, actor=request.user, **changes)


class RotateSecret(ModalAction):
    name = "rotate"
    label = "Rotate secret"
    title = "Rotate the signing secret"
    description = (
        "A new secret signs every delivery from now on. For 24 hours the current secret signs "
        "too, so the merchant's receiver keeps verifying while they switch. The new secret is "
        "shown once, on the next page."
    )
    permission = ENDPOINT_CHANGE
    submit_label = "Rotate secret"
    danger = True
    result_template = "backoffice/webhooks/secret_rotated.html"

    def perform(self, request, obj: WebhookEndpoint, form):
        return services.webhook_endpoint_rotate_secret(endpoint=obj, actor=request.user)


class SendTestEvent(ModalAction):
    name = "test"
    label = "Send test event"
    description = "Sends a signed test event to this endpoint through the usual delivery path."
    permission = DELIVERY_CHANGE
    submit_label = "Send"
    success_message = "Test event queued: it appears among the deliveries below."

    def is_available(self, request, obj: WebhookEndpoint) -> bool:
        return obj.enabled

    def perform(self, request, obj: WebhookEndpoint, form):
        return services.webhook_endpoint_send_test(endpoint=obj, actor=request.user)


class DisableEndpoint(ModalAction):
    name = "disable"
    label = "Disable"
    title = "Disable the endpoint"
    description = "No new deliveries are made to it until it is enabled again; pending ones wait."
    permission = ENDPOINT_CHANGE
    form_class = ReasonForm
    submit_label = "Disable"
    danger = True
    success_message = "Endpoint disabled."

    def is_available(self, request, obj: WebhookEndpoint) -> bool:
        return obj.enabled

    def perform(self, request, obj: WebhookEndpoint, form):
        return services.webhook_endpoint_disable(
            endpoint=obj, reason=form.cleaned_data["reason"], actor=request.user
        )


class EnableEndpoint(ModalAction):
    name = "enable"
    label = "Enable"
    title = "Enable the endpoint"
    description = "Deliveries to it start again, beginning with those that waited."
    permission = ENDPOINT_CHANGE
    submit_label = "Enable"
    success_message = "Endpoint enabled."

    def is_available(self, request, obj: WebhookEndpoint) -> bool:
        return not obj.enabled

    def get_facts(self, request, obj: WebhookEndpoint):
        return [("Disabled", obj.disabled_at or "—"), ("Reason", obj.disabled_reason or "—")]

    def perform(self, request, obj: WebhookEndpoint, form):
        return services.webhook_endpoint_enable(endpoint=obj, actor=request.user)


class RedeliverFailed(ModalAction):
    name = "redeliver_failed"
    label = "Redeliver failed"
    title = "Redeliver every failed delivery"
    description = (
        "Every failed or abandoned delivery of this endpoint is tried again now, with its "
        "original webhook-id, so the merchant's receiver can tell a repeat."
    )
    permission = DELIVERY_CHANGE
    submit_label = "Redeliver"

    def is_available(self, request, obj: WebhookEndpoint) -> bool:
        return obj.enabled

    def get_facts(self, request, obj: WebhookEndpoint):
        waiting = WebhookDelivery.objects.filter(
            endpoint=obj, status__in=[WebhookDelivery.Status.FAILED, WebhookDelivery.Status.ABANDONED]
        ).count()
        return [("Failed or abandoned deliveries", f"{waiting:,}")]

    def perform(self, request, obj: WebhookEndpoint, form):
        return services.webhook_endpoint_redeliver_failed(endpoint=obj, actor=request.user)

    def get_success_message(self, request, obj, result) -> str:
        return f"{result:,} deliveries queued again."


# --- endpoints ---------------------------------------------------------------------------------


class HealthFilter(admin.SimpleListFilter):
    title = "health"
    parameter_name = "health"

    def lookups(self, request, model_admin):
        return [
            ("healthy", "enabled and delivering"),
            ("failing", "failing now"),
            ("disabled_auto", "disabled automatically"),
            ("disabled", "disabled (any)"),
        ]

    def queryset(self, request, queryset):
        match self.value():
            case "healthy":
                return queryset.filter(enabled=True, failing_since__isnull=True)
            case "failing":
                return queryset.filter(FAILING)
            case "disabled_auto":
                return queryset.filter(AUTO_DISABLED)
            case "disabled":
                return queryset.filter(enabled=False)
        return queryset


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ModalActionsMixin, IdSearchMixin, ReadOnlyAdmin):
    modal_actions = [
        EditEndpoint,
        SendTestEvent,
        RedeliverFailed,
        RotateSecret,
        DisableEndpoint,
        EnableEndpoint,
    ]
    change_form_template = "backoffice/billing_change_form.html"
    list_display = (
        "url_display",
        "organization",
        "status",
        "failing_since_display",
        "disabled_reason_display",
        "success_rate_display",
        "created",
    )
    list_display_links = ("url_display",)
    list_filter = (HealthFilter, "organization")
    list_select_related = ("organization",)
    search_fields = ("url", "description", "organization__name")
    search_help_text = "Words of the URL or description, the organization's name, or an endpoint id (exact)."
    show_full_result_count = False
    list_per_page = 50
    fieldsets = (
        (None, {"fields": ("organization", "url", "description", "event_types_display", "status")}),
        (
            "Health",
            {
                "fields": (
                    "success_rate_display",
                    "failing_since_display",
                    "disabled_at_display",
                    "disabled_reason_display",
                )
            },
        ),
        ("Signing secret", {"fields": ("secret_display",)}),
        ("Deliveries", {"fields": ("recent_deliveries",)}),
        ("Record", {"fields": ("id", "created_at", "updated_at", "audit")}),
    )

    def get_queryset(self, request):
        return with_recent_success(super().get_queryset(request))

    # --- columns and fields

    @admin.display(description="URL", ordering="url")
    def url_display(self, endpoint: WebhookEndpoint):
        return format_html(
            '<span class="bo-mono" title="{}">{}</span>', endpoint.url, _short_url(endpoint.url)
        )

    @admin.display(description="status", ordering="enabled")
    def status(self, endpoint: WebhookEndpoint):
        return endpoint_status_badge(endpoint)

    @admin.display(description="failing since", ordering="failing_since")
    def failing_since_display(self, endpoint: WebhookEndpoint):
        return when(endpoint.failing_since)

    @admin.display(description="disabled at", ordering="disabled_at")
    def disabled_at_display(self, endpoint: WebhookEndpoint):
        return when(endpoint.disabled_at)

    @admin.display(description="disabled reason")
    def disabled_reason_display(self, endpoint: WebhookEndpoint) -> str:
        return endpoint.disabled_reason if not endpoint.enabled and endpoint.disabled_reason else "—"

    @admin.display(description="success rate")
    def success_rate_display(self, endpoint: WebhookEndpoint):
        rate = success_rate(endpoint)
        return badge(str(rate), rate.tone)

    @admin.display(description="created", ordering="created_at")
    def created(self, endpoint: WebhookEndpoint):
        return when(endpoint.created_at)

    @admin.display(description="event types")
    def event_types_display(self, endpoint: WebhookEndpoint):
        if ANY in endpoint.event_types:
            return badge("every event", "info")
        return format_html_join(
            " ",
            '<span class="bo-mono" title="{}">{}</span>',
            ((_describe(t), t) for t in endpoint.event_types),
        )

    @admin.display(description="secret")
    def secret_display(self, endpoint: WebhookEndpoint):
        # Never the secret itself: whether a rotation's overlap is running, and till when.
        if endpoint.previous_secret and endpoint.previous_secret_expires_at:
            return format_html(
                "set (shown once, when created or rotated) · the previous secret also signs until {}",
                when(endpoint.previous_secret_expires_at),
            )
        return "set (shown once, when created or rotated)"

    @admin.display(description="recent deliveries")
    def recent_deliveries(self, endpoint: WebhookEndpoint):
        deliveries = list(
            WebhookDelivery.objects.filter(endpoint=endpoint)
            .select_related("event")
            .order_by("-event_id")[:RECENT_ON_PAGE]
        )
        return render_to_string(
            "backoffice/webhooks/deliveries_table.html",
            {
                "rows": [_delivery_row(d) for d in deliveries],
                "all_url": _changelist_url(WebhookDelivery, endpoint=endpoint.pk),
                "failed_url": _changelist_url(WebhookDelivery, endpoint=endpoint.pk, status__exact="failed"),
            },
        )

    @admin.display(description="audit log")
    def audit(self, endpoint: WebhookEndpoint):
        return format_html(
            '<a href="{}">Everything done to this endpoint</a>', _changelist_url(AuditEntry, q=endpoint.pk)
        )

    # --- the rotation's answer shows the new secret, once

    def _modal_action_done(self, request, obj, action, result):
        template = getattr(action, "result_template", None)
        if template is None:
            return super()._modal_action_done(request, obj, action, result)
        in_modal = bool(request.htmx) and not request.htmx.boosted
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Copy the new signing secret",
            "endpoint": obj,
            "secret": result,
            "in_modal": in_modal,
            "endpoint_url": admin_change_url("webhooks", "webhookendpoint", obj.pk),
        }
        messages.success(request, "Signing secret rotated.")
        response = TemplateResponse(request, f"{template}#modal" if in_modal else template, context)
        add_never_cache_headers(response)  # the secret must not be kept by any cache
        return response


def _describe(event_type: str) -> str:
    spec = REGISTRY.types.get(event_type)
    return spec.description if spec else "not in the catalogue"


def _delivery_row(delivery: WebhookDelivery) -> dict:
    return {
        "delivery": delivery,
        "url": admin_change_url("webhooks", "webhookdelivery", delivery.pk),
        "when": when(delivery.created_at),
        "status": delivery_status_badge(delivery),
        "next": when(delivery.next_attempt_at) if delivery.next_attempt_at else "",
    }


# --- deliveries ------------------------------------------------------------------------------


class RedeliverOne(ModalAction):
    name = "redeliver"
    label = "Redeliver"
    title = "Redeliver this event"
    description = (
        "Sends the event to the endpoint again now, with the same webhook-id, so the merchant's "
        "receiver can tell a repeat."
    )
    permission = DELIVERY_CHANGE
    submit_label = "Redeliver"
    success_message = "Delivery queued again."

    def is_available(self, request, obj: WebhookDelivery) -> bool:
        return obj.endpoint.enabled and obj.status != WebhookDelivery.Status.PENDING

    def get_facts(self, request, obj: WebhookDelivery):
        return [("Event", obj.event.type), ("Endpoint", obj.endpoint.url), ("Status", obj.status)]

    def perform(self, request, obj: WebhookDelivery, form):
        return services.webhook_delivery_redeliver(delivery=obj, actor=request.user)


class EventTypeFilter(admin.SimpleListFilter):
    title = "event type"
    parameter_name = "type"

    def lookups(self, request, model_admin):
        return [(name, name) for name in sorted(REGISTRY.types)]

    def queryset(self, request, queryset):
        return queryset.filter(event__type=self.value()) if self.value() else queryset


class EndpointFilter(admin.SimpleListFilter):
    """By an endpoint's id (linked from the endpoint page); no list of every endpoint."""

    title = "endpoint"
    parameter_name = "endpoint"

    def lookups(self, request, model_admin):
        # Always an entry for the value asked, or Django would skip the filter altogether.
        value = self.value()
        if not value:
            return []
        endpoint = WebhookEndpoint.objects.filter(pk=value).first() if _is_uuid(value) else None
        return [(value, _short_url(endpoint.url, 50) if endpoint else "no such endpoint")]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        return queryset.filter(endpoint_id=value) if _is_uuid(value) else queryset.none()


def _is_uuid(value) -> bool:
    return bool(value) and parse_uuid(value) is not None


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ModalActionsMixin, ReadOnlyAdmin):
    modal_actions = [RedeliverOne]
    change_form_template = "backoffice/billing_change_form.html"
    list_display = (
        "id",
        "created",
        "status_display",
        "event_type",
        "object_key",
        "endpoint_display",
        "attempts",
        "last_status_code",
        "next_attempt",
        "organization",
    )
    list_display_links = ("id", "created")
    list_filter = (
        "status",
        EventTypeFilter,
        EndpointFilter,
        "organization",
        ("created_at", admin.DateFieldListFilter),
    )
    list_select_related = ("event", "endpoint", "organization")
    search_fields = ("=object_key",)
    search_help_text = "An object (exact, e.g. order:<id>), an event id (evt_…) or a delivery number."
    show_full_result_count = False
    list_per_page = 50
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "status_display",
                    "endpoint_link",
                    "organization",
                    "event_summary",
                    "object_key",
                )
            },
        ),
        (
            "Attempts",
            {"fields": ("attempts", "last_status_code", "next_attempt", "delivered", "attempts_table")},
        ),
        ("Payload", {"fields": ("payload",)}),
        ("Record", {"fields": ("id", "created")}),
    )

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if term.isdigit():
            return queryset.filter(pk=int(term)), False
        if term.startswith("evt_"):
            found = parse_uuid(term.removeprefix("evt_"))
            return (queryset.filter(event__uuid=found) if found else queryset.none()), False
        return super().get_search_results(request, queryset, search_term)

    @admin.display(description="created", ordering="created_at")
    def created(self, delivery: WebhookDelivery):
        return when(delivery.created_at)

    @admin.display(description="status", ordering="status")
    def status_display(self, delivery: WebhookDelivery):
        return delivery_status_badge(delivery)

    @admin.display(description="event type", ordering="event__type")
    def event_type(self, delivery: WebhookDelivery) -> str:
        return delivery.event.type

    @admin.display(description="endpoint")
    def endpoint_display(self, delivery: WebhookDelivery):
        return format_html('<span class="bo-mono">{}</span>', _short_url(delivery.endpoint.url, 40))

    @admin.display(description="next attempt", ordering="next_attempt_at")
    def next_attempt(self, delivery: WebhookDelivery):
        if delivery.status in (WebhookDelivery.Status.DELIVERED, WebhookDelivery.Status.ABANDONED):
            return "—"
        return when(delivery.next_attempt_at)

    @admin.display(description="delivered")
    def delivered(self, delivery: WebhookDelivery):
        return when(delivery.delivered_at)

    @admin.display(description="endpoint")
    def endpoint_link(self, delivery: WebhookDelivery):
        return _link(delivery.endpoint, delivery.endpoint.url)

    @admin.display(description="event")
    def event_summary(self, delivery: WebhookDelivery):
        event = delivery.event
        return format_html(
            '<span class="bo-mono">{}</span> · <span class="bo-mono">{}</span> · occurred {}',
            event.type,
            event.public_id,
            when(event.occurred_at),
        )

    @admin.display(description="attempts made")
    def attempts_table(self, delivery: WebhookDelivery):
        attempts = WebhookAttempt.objects.filter(delivery=delivery).order_by("started_at", "id")
        return render_to_string(
            "backoffice/webhooks/attempts_table.html",
            {"rows": [{"attempt": a, "when": when(a.started_at)} for a in attempts]},
        )

    @admin.display(description="body sent")
    def payload(self, delivery: WebhookDelivery):
        return pretty_json(event_envelope(delivery.event))
