"""Backoffice: payments and the External events page (Stripe events, with replay and ignore)."""

from datetime import timedelta

from django import forms
from django.contrib import admin
from django.db.models import Count, Q
from django.urls import reverse
from django.utils.html import format_html

from accounts.backoffice import CustomerEmailSearchMixin
from billing.money import format_amount
from billing.payments import events
from billing.payments.models import ExternalEvent, Payment
from billing.payments.receivers import UNMATCHED_NOTE
from billing.payments.selectors import payments_held
from core import clock
from core.admin import ReadOnlyAdmin
from core.backoffice.actions import ModalAction, ModalActionsMixin
from core.backoffice.dashboard import Metric, dashboard
from core.backoffice.display import badge, pretty_json, when

PAYMENT_TONES = {
    "succeeded": "good",
    "failed": "bad",
    "canceled": "muted",
    "pending": "info",
    "processing": "info",
}
EVENT_TONES = {
    "processed": "good",
    "failed": "bad",
    "pending": "info",
    "deferred": "warn",
    "ignored": "muted",
}


@dashboard.card(
    "failed_payments_7d", title="Failed payments · 7 days", order=40, permission="payments.view_payment"
)
def failed_payments_card(request) -> Metric:
    since = clock.now() - timedelta(days=7)
    failed = Payment.objects.filter(status=Payment.Status.FAILED, failed_at__gte=since).count()
    url = reverse("admin:payments_payment_changelist") + "?status__exact=failed"
    return Metric(str(failed), hint="declined or errored attempts", url=url, tone="bad" if failed else "good")


@dashboard.card(
    "external_events", title="Stripe events needing care", order=60, permission="payments.view_externalevent"
)
def external_events_card(request) -> Metric:
    counts = dict(
        ExternalEvent.objects.filter(status__in=[ExternalEvent.Status.FAILED, ExternalEvent.Status.PENDING])
        .values_list("status")
        .annotate(n=Count("id"))
    )
    failed = counts.get(ExternalEvent.Status.FAILED, 0)
    since = clock.now() - timedelta(days=7)
    unmatched = ExternalEvent.objects.filter(
        status=ExternalEvent.Status.IGNORED, received_at__gte=since, note__startswith=UNMATCHED_NOTE
    ).count()
    url = reverse("admin:payments_externalevent_changelist") + "?status__exact=failed"
    hint = f"failed · {counts.get(ExternalEvent.Status.PENDING, 0)} waiting to be processed"
    if unmatched:
        hint += f" · {unmatched} not applied to any payment this week"
    return Metric(str(failed), hint=hint, url=url, tone="bad" if failed else "good")


@dashboard.card(
    "held_payments", title="Payments held for review", order=45, permission="payments.view_payment"
)
def held_payments_card(request) -> Metric:
    held = payments_held().count()
    url = reverse("admin:payments_payment_changelist") + "?held=yes"
    hint = "the processor took another amount or currency than asked"
    return Metric(str(held), hint=hint, url=url, tone="bad" if held else "good")


class HeldFilter(admin.SimpleListFilter):
    title = "held for review"
    parameter_name = "held"

    def lookups(self, request, model_admin):
        return [("yes", "Held, waiting for an operator"), ("no", "Never held")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.exclude(hold_reason="").filter(hold_released_at__isnull=True)
        if self.value() == "no":
            return queryset.filter(hold_reason="")
        return queryset


def payment_status_badge(payment: Payment):
    if payment.hold_reason:
        return badge(f"{payment.status} · held", "bad")
    return badge(payment.status, PAYMENT_TONES.get(payment.status, "warn"))


@admin.register(Payment)
class PaymentAdmin(CustomerEmailSearchMixin, ReadOnlyAdmin):
    list_display = (
        "created",
        "amount_display",
        "status_badge",
        "trigger",
        "reference",
        "customer",
        "organization",
    )
    list_filter = ("status", HeldFilter, "trigger", "processor", ("created_at", admin.DateFieldListFilter))
    list_select_related = ("customer", "organization")
    search_fields = ("customer__email",)  # shows the search box; see get_search_results
    search_help_text = "Reference, PaymentIntent or charge id (exact), or the customer's email."
    show_full_result_count = False
    list_per_page = 50

    def get_search_results(self, request, queryset, search_term):
        # References and processor ids are matched exactly (their btree indexes); Django's
        # "=field" would compare UPPER(field) and read every payment.
        term = search_term.strip()
        if ":" in term:  # checkout:<id>, order:<id>
            return queryset.filter(reference=term), False
        if term.startswith(("pi_", "ch_", "py_")):
            return queryset.filter(Q(processor_payment_id=term) | Q(processor_charge_id=term)), False
        return super().get_search_results(request, queryset, search_term)

    fieldsets = (
        (
            None,
            {
                "fields": (
                    "organization",
                    "customer",
                    "reference",
                    "attempt",
                    "trigger",
                    "status",
                    "hold_reason",
                    "hold_released_at",
                    "amount_display",
                )
            },
        ),
        (
            "Processor",
            {
                "fields": (
                    "processor",
                    "processor_payment_id",
                    "processor_charge_id",
                    "payment_method_id",
                    "idempotency_key",
                    "off_session",
                    "processor_state_at",
                    "submitted_at",
                    "settle_check_at",
                )
            },
        ),
        (
            "Outcome",
            {"fields": ("decline_code", "decline_message", "risk_level", "risk_score", "amount_refunded")},
        ),
        ("Fees", {"fields": ("balance_transaction_id", "fee", "net")}),
        ("Record", {"fields": ("id", "created_at", "succeeded_at", "failed_at", "note", "metadata")}),
    )

    @admin.display(description="created", ordering="created_at")
    def created(self, payment: Payment):
        return when(payment.created_at)

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, payment: Payment) -> str:
        return format_amount(payment.amount, payment.currency)

    @admin.display(description="status", ordering="status")
    def status_badge(self, payment: Payment):
        return payment_status_badge(payment)


class ReasonForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), help_text="Recorded in the audit log.")


class OptionalReasonForm(forms.Form):
    reason = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), help_text="Recorded in the audit log."
    )


class ReplayEvent(ModalAction):
    name = "replay"
    label = "Replay"
    title = "Replay this event"
    description = (
        "Runs this event's receiver again. Receivers are idempotent: what was already applied stays."
    )
    permission = "payments.replay_externalevent"
    form_class = OptionalReasonForm
    submit_label = "Replay"

    def get_facts(self, request, obj: ExternalEvent):
        return [("Type", obj.type), ("Status", obj.status), ("Attempts", obj.attempts)]

    def perform(self, request, obj: ExternalEvent, form):
        return events.external_event_replay(event=obj, actor=request.user, **form.cleaned_data)


class IgnoreEvent(ModalAction):
    name = "ignore"
    label = "Mark ignored"
    title = "Stop processing this event"
    description = "The event stays stored but is no longer retried."
    permission = "payments.ignore_externalevent"
    form_class = ReasonForm
    submit_label = "Mark ignored"
    danger = True

    def is_available(self, request, obj: ExternalEvent) -> bool:
        return obj.status not in (ExternalEvent.Status.PROCESSED, ExternalEvent.Status.IGNORED)

    def get_facts(self, request, obj: ExternalEvent):
        return [
            ("Type", obj.type),
            ("Status", obj.status),
            ("Error", (obj.error or "—").splitlines()[-1:][0]),
        ]

    def perform(self, request, obj: ExternalEvent, form):
        return events.external_event_ignore(event=obj, actor=request.user, **form.cleaned_data)


@admin.register(ExternalEvent)
class ExternalEventAdmin(ModalActionsMixin, ReadOnlyAdmin):
    modal_actions = [ReplayEvent, IgnoreEvent]
    list_display = ("received", "type", "status_badge", "attempts", "event_id", "note_short")
    list_filter = ("status", "type", ("received_at", admin.DateFieldListFilter))
    search_fields = ("=event_id", "type")
    search_help_text = "An event id (exact) or an event type."
    show_full_result_count = False
    list_per_page = 50
    fields = (
        "event_id",
        "type",
        "status_badge",
        "note",
        "occurred_at",
        "received_at",
        "processed_at",
        "attempts",
        "next_attempt_at",
        "error_pre",
        "delivery_link",
        "payload_pretty",
    )

    @admin.display(description="received", ordering="received_at")
    def received(self, event: ExternalEvent):
        return when(event.received_at)

    @admin.display(description="status", ordering="status")
    def status_badge(self, event: ExternalEvent):
        return badge(event.status, EVENT_TONES.get(event.status, "muted"))

    @admin.display(description="note")
    def note_short(self, event: ExternalEvent) -> str:
        return event.note[:80]

    @admin.display(description="error")
    def error_pre(self, event: ExternalEvent):
        return format_html('<pre class="bo-json">{}</pre>', event.error) if event.error else "—"

    @admin.display(description="payload")
    def payload_pretty(self, event: ExternalEvent):
        return pretty_json(event.payload)

    @admin.display(description="delivery")
    def delivery_link(self, event: ExternalEvent):
        if event.delivery_id is None:
            return "—"
        url = reverse("admin:djstripe_webhookeventtrigger_change", args=[event.delivery_id])
        return format_html('<a href="{}">webhook delivery #{}</a>', url, event.delivery_id)
