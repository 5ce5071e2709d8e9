"""Backoffice: payments and the External events page (Stripe events, with replay and ignore)."""

from datetime import timedelta

from django import forms
from django.contrib import admin
from django.db.models import Count, Q
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from accounts.backoffice import CustomerEmailSearchMixin
from billing.money import format_amount
from billing.payments import events
from billing.payments.backoffice import Link, PaidFor, event_payments, paid_for
from billing.payments.models import ExternalEvent, Payment
from billing.payments.receivers import UNMATCHED_NOTE
from billing.payments.selectors import payments_held
from core import clock
from core.admin import ReadOnlyAdmin
from core.backoffice.actions import ModalAction, ModalActionsMixin
from core.backoffice.dashboard import Metric, dashboard
from core.backoffice.display import admin_link, badge, customer_label, pretty_json, when

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
        "paid_for_display",
        "product_display",
        "subscription_display",
        "customer_link",
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
                    "customer_link",
                    "paid_for_links",
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
            {"fields": ("decline_code", "decline_message", "risk_level", "risk_score", "refunded_display")},
        ),
        ("Fees", {"fields": ("balance_transaction_id", "fee_display", "net_display")}),
        ("Record", {"fields": ("id", "created_at", "succeeded_at", "failed_at", "note", "metadata")}),
    )

    def get_changelist_instance(self, request):
        # What each row pays for, resolved for the whole page at once (one query per kind).
        changelist = super().get_changelist_instance(request)
        found = paid_for(payment.reference for payment in changelist.result_list)
        for payment in changelist.result_list:
            payment.paid_for = found.get(payment.reference)
        return changelist

    def _paid_for(self, payment: Payment) -> PaidFor | None:
        if not hasattr(payment, "paid_for"):
            payment.paid_for = paid_for([payment.reference]).get(payment.reference)
        return payment.paid_for

    @admin.display(description="created", ordering="created_at")
    def created(self, payment: Payment):
        return when(payment.created_at)

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, payment: Payment) -> str:
        return format_amount(payment.amount, payment.currency)

    @admin.display(description="pays for")
    def paid_for_display(self, payment: Payment):
        found = self._paid_for(payment)
        if found is None:
            return payment.reference
        if found.order is None or found.order == found.what:
            return found.what.html()
        # A checkout that succeeded: its order is what the operator looks for.
        via = Link("via checkout", found.what.url)
        return format_html('{} <span class="bo-quiet">{}</span>', found.order.html(), via.html())

    @admin.display(description="product")
    def product_display(self, payment: Payment):
        found = self._paid_for(payment)
        return found.product.html() if found and found.product else "—"

    @admin.display(description="subscription")
    def subscription_display(self, payment: Payment):
        found = self._paid_for(payment)
        return found.subscription.html() if found and found.subscription else "—"

    @admin.display(description="customer", ordering="customer__email")
    def customer_link(self, payment: Payment):
        if payment.customer_id is None:
            return "—"
        return admin_link(payment.customer, customer_label(payment.customer))

    @admin.display(description="pays for")
    def paid_for_links(self, payment: Payment):
        found = self._paid_for(payment)
        if found is None:
            return payment.reference
        rows = [found.what.html()] + [
            format_html("{}: {}", name, link.html()) for name, link in found.links() if link != found.what
        ]
        return format_html_join(" · ", "{}", ((row,) for row in rows))

    def _money(self, payment: Payment, amount: int | None) -> str:
        return "—" if amount is None else format_amount(amount, payment.currency)

    @admin.display(description="processor fee")
    def fee_display(self, payment: Payment) -> str:
        return self._money(payment, payment.fee)

    @admin.display(description="net of the fee")
    def net_display(self, payment: Payment) -> str:
        return self._money(payment, payment.net)

    @admin.display(description="refunded")
    def refunded_display(self, payment: Payment) -> str:
        return self._money(payment, payment.amount_refunded)

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


def attach_concerns(events) -> None:
    """Set ``concerns_payment`` and ``concerns_paid_for`` on each event: two queries for
    the payments, then one per kind of reference (order, checkout)."""
    payments = event_payments(events)
    found = paid_for(p.reference for p in payments.values())
    for event in events:
        payment = payments.get(event.pk)
        event.concerns_payment = payment
        event.concerns_paid_for = found.get(payment.reference) if payment is not None else None


@admin.register(ExternalEvent)
class ExternalEventAdmin(ModalActionsMixin, ReadOnlyAdmin):
    modal_actions = [ReplayEvent, IgnoreEvent]
    list_display = (
        "received",
        "type",
        "status_badge",
        "order_link",
        "customer_link",
        "attempts",
        "event_id",
        "note_short",
    )
    list_filter = ("status", "type", ("received_at", admin.DateFieldListFilter))
    search_fields = ("=event_id", "type")
    search_help_text = "An event id (exact) or an event type."
    show_full_result_count = False
    list_per_page = 50
    fields = (
        "event_id",
        "type",
        "status_badge",
        "concerns",
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

    def get_changelist_instance(self, request):
        # The payment, order and customer of every row, for the whole page at once.
        changelist = super().get_changelist_instance(request)
        attach_concerns(changelist.result_list)
        return changelist

    def _concerns(self, event: ExternalEvent) -> tuple[Payment | None, PaidFor | None]:
        if not hasattr(event, "concerns_payment"):
            attach_concerns([event])
        return event.concerns_payment, event.concerns_paid_for

    @admin.display(description="order")
    def order_link(self, event: ExternalEvent):
        _, found = self._concerns(event)
        if found is not None and found.order is not None:
            return found.order.html()
        return found.what.html() if found is not None else "—"

    @admin.display(description="customer")
    def customer_link(self, event: ExternalEvent):
        payment, _ = self._concerns(event)
        if payment is None or payment.customer_id is None:
            return "—"
        return admin_link(payment.customer, customer_label(payment.customer))

    @admin.display(description="concerns")
    def concerns(self, event: ExternalEvent):
        payment, found = self._concerns(event)
        if payment is None:
            return "No payment of ours: the ids this event carries match none."
        rows = [
            (
                "payment",
                admin_link(
                    payment, f"attempt {payment.attempt} · {format_amount(payment.amount, payment.currency)}"
                ),
            )
        ]
        if found is not None:
            rows += [(name, link.html()) for name, link in found.links()]
            if found.order is None:
                rows.insert(1, ("for", found.what.html()))
        if payment.customer_id is not None:
            rows.append(("customer", admin_link(payment.customer, customer_label(payment.customer))))
        return format_html_join(" · ", "{}: {}", rows)

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
