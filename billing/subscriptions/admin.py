"""Backoffice: subscriptions (written by the subscription services only), with the timeline
of their orders and payments, the operator actions (change plan or seats with a preview,
cancel, uncancel, revoke, pause, resume, trials, period-end correction), and the MRR and
active-subscription cards."""

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from fractions import Fraction

from django import forms
from django.contrib import admin
from django.db.models import Count, Q, Sum
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import urlencode

from accounts.models import ProrationBehavior
from billing.catalog.models import Price, Product
from billing.catalog.services import MAX_SEATS
from billing.money import format_amount, round_half_up
from billing.orders.admin import (
    ORDER_TONES,
    CustomerEmailSearchMixin,
    currency_totals_metric,
    nowrap,
    payment_rows,
    payments_for,
    when_field,
)
from billing.orders.models import Order
from billing.orders.selectors import order_payment_references
from billing.subscriptions import services
from billing.subscriptions.changes import CHANGEABLE, ChangePlan
from billing.subscriptions.models import Subscription
from core.admin import ReadOnlyAdmin
from core.backoffice.actions import ModalAction, ModalActionsMixin
from core.backoffice.dashboard import Metric, dashboard
from core.backoffice.display import badge, pretty_json, when
from core.backoffice.search import parse_uuid
from core.backoffice.timeline import admin_change_url, order_label, per_interval, tax_rate_label

SUBSCRIPTION_TONES = {
    "active": "good",
    "trialing": "info",
    "past_due": "bad",
    "unpaid": "bad",
    "incomplete": "warn",
    "paused": "muted",
    "canceled": "muted",
}
LIVE_STATUSES = (Subscription.Status.TRIALING, Subscription.Status.ACTIVE, Subscription.Status.PAST_DUE)
TIMELINE_ORDERS = 50

# One period's amount, normalised to a month (a month being 365.25 / 12 = 30.4375 days).
DAYS_PER_MONTH = Fraction(304375, 10000)
MONTHS_PER_INTERVAL = {
    "day": 1 / DAYS_PER_MONTH,
    "week": 7 / DAYS_PER_MONTH,
    "month": Fraction(1),
    "year": Fraction(12),
}


def monthly(amount: int, interval: str, count: int) -> Fraction:
    """``amount`` charged every ``count`` ``interval``s, per month (unrounded)."""
    return Fraction(amount) / (MONTHS_PER_INTERVAL[interval] * count)


def mrr_by_currency() -> tuple[dict[str, int], int]:
    """Monthly recurring revenue of active subscriptions per currency (minor units, rounded
    half-up once per currency), and how many subscriptions it counts. One query."""
    rows = (
        Subscription.objects.filter(
            status=Subscription.Status.ACTIVE, product__recurring_interval__isnull=False
        )
        .order_by()
        .values("currency", "product__recurring_interval", "product__recurring_interval_count")
        .annotate(amount=Sum("amount"), n=Count("id"))
    )
    exact: dict[str, Fraction] = defaultdict(Fraction)
    count = 0
    for row in rows:
        exact[row["currency"]] += monthly(
            row["amount"], row["product__recurring_interval"], row["product__recurring_interval_count"]
        )
        count += row["n"]
    return {currency: round_half_up(value) for currency, value in exact.items()}, count


def _changelist(query: dict | None = None) -> str:
    url = reverse("admin:subscriptions_subscription_changelist")
    return f"{url}?{urlencode(query)}" if query else url


@dashboard.card("mrr", title="MRR", order=10, permission="subscriptions.view_subscription")
def mrr_card(request) -> Metric:
    totals, count = mrr_by_currency()
    hint = f"{count:,} active subscription{'s' if count != 1 else ''}"
    return currency_totals_metric(totals, hint=hint, url=_changelist({"status__exact": "active"}))


@dashboard.card(
    "active_subscriptions",
    title="Active subscriptions",
    order=20,
    permission="subscriptions.view_subscription",
)
def active_subscriptions_card(request) -> Metric:
    counts = Subscription.objects.aggregate(
        **{status.value: Count("id", filter=Q(status=status)) for status in LIVE_STATUSES}
    )
    total = sum(counts.values())
    hint = f"{counts['active']:,} active · {counts['trialing']:,} trialing · {counts['past_due']:,} past due"
    url = _changelist({"status__in": ",".join(LIVE_STATUSES)})
    return Metric(f"{total:,}", hint=hint, url=url)


# --- operator actions ------------------------------------------------------------------------
#
# Each calls one service with actor=request.user; the service checks the rules and writes the
# audit entry. ``is_available`` only decides which buttons the page shows.
#
# Permissions (core.roles): subscriptions.change_subscription (support, finance, admin) for
# cancel, uncancel, pause, resume, extend trial and period-end correction;
# subscriptions.add_billingentry (finance, admin) for what bills the customer at once: plan and
# seat changes and ending a trial; subscriptions.delete_subscription (finance, admin) to revoke.

CHANGE = "subscriptions.change_subscription"
BILL = "subscriptions.add_billingentry"
REVOKE = "subscriptions.delete_subscription"


def _is_live(sub: Subscription) -> bool:
    return sub.status in CHANGEABLE


def _amount_per_period(sub: Subscription) -> str:
    product = sub.product
    return per_interval(
        sub.amount, sub.currency, product.recurring_interval, product.recurring_interval_count
    )


def _basic_facts(sub: Subscription) -> list[tuple[str, object]]:
    return [
        ("Status", sub.get_status_display()),
        ("Customer", sub.customer.email),
        ("Amount", _amount_per_period(sub)),
        (
            "Current period",
            format_html("{} → {}", when(sub.current_period_start), when(sub.current_period_end)),
        ),
    ]


def price_label(price: Price) -> str:
    product = price.product
    interval, count = product.recurring_interval, product.recurring_interval_count
    if price.type == Price.Type.FIXED:
        terms = per_interval(price.amount, price.currency, interval, count)
    elif price.type == Price.Type.FREE:
        terms = "free"
    elif price.type == Price.Type.CUSTOM:
        terms = "pay what you want (keeps the current amount)"
    else:
        bounds = (
            f"{price.minimum_seats} to {price.maximum_seats}"
            if price.maximum_seats
            else f"{price.minimum_seats}+"
        )
        terms = f"per seat, {bounds} seats"
    return f"{product.name} · {terms}"


def changeable_prices(sub: Subscription):
    """The organization's active recurring prices a subscription may move to, in its currency
    (another interval starts a new period now)."""
    return (
        Price.objects.filter(
            organization_id=sub.organization_id,
            currency=sub.currency,
            product__recurring_interval__isnull=False,
        )
        .filter(Q(is_archived=False, product__is_archived=False) | Q(pk=sub.price_id))
        .select_related("product")
        .order_by("product__name", "created_at")
    )


class PriceChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, price: Price) -> str:
        return price_label(price)


class ChangePlanForm(forms.Form):
    price_id = PriceChoiceField(
        queryset=Price.objects.none(),
        empty_label=None,
        label="Price",
        help_text="Active recurring prices of this organization in the same currency. Another billing "
        "interval starts a new period now, billed now.",
    )
    seats = forms.IntegerField(
        min_value=1,
        max_value=MAX_SEATS,
        required=False,
        help_text="For per-seat prices; ignored for the others. Empty keeps the current number.",
    )
    proration_behavior = forms.ChoiceField(
        choices=ProrationBehavior.choices,
        label="Proration",
        help_text="The organization's default is preselected.",
    )
    replace_scheduled_change = forms.BooleanField(
        required=False,
        label="Replace the scheduled change",
        help_text="Without it, a change waiting for the period end is kept (a seat change keeps a "
        "scheduled plan change and vice versa).",
    )

    def __init__(self, *args, subscription: Subscription, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["price_id"].queryset = changeable_prices(subscription)

    def clean(self):
        cleaned = super().clean()
        price = cleaned.get("price_id")
        if price is not None and price.type != Price.Type.SEAT_BASED:
            cleaned["seats"] = None
        return cleaned

    def change_arguments(self) -> dict:
        data = self.cleaned_data
        return {
            "price_id": data["price_id"].pk,
            "seats": data["seats"],
            "proration_behavior": data["proration_behavior"],
            "replace_scheduled_change": data.get("replace_scheduled_change", False),
        }


def change_preview_context(plan: ChangePlan) -> dict:
    """What the change modal shows: every line and amount, formatted, plus the raw totals."""
    sub, currency = plan.subscription, plan.subscription.currency
    product = plan.price.product
    invoice = plan.invoice
    due_now = plan.amount_due_now
    carried = plan.amount_carried_forward
    next_order = plan.next_order_adjustment
    balance_credit = invoice.wallet_credit if invoice is not None else 0
    invoice_rows = []
    if invoice is not None:
        order = invoice.order
        invoice_rows = [
            ("Subtotal", format_amount(order.subtotal, currency)),
            ("Tax", f"{format_amount(order.tax, currency)} ({tax_rate_label(order.tax_rate_bps)}"
             f"{', included' if order.tax_inclusive else ''}{', reverse charge' if order.reverse_charge else ''})"),
        ]  # fmt: skip
        if balance_credit:
            invoice_rows.append(
                ("Credited to the customer's balance (tax included)", format_amount(balance_credit, currency))
            )
        if order.applied_balance - carried:
            invoice_rows.append(
                ("Customer balance applied", format_amount(-(order.applied_balance - carried), currency))
            )
        if carried:
            invoice_rows.append(
                (
                    "Below the minimum charge: carried to the next order",
                    format_amount(carried, currency),
                )
            )
    return {
        "behavior": plan.behavior,
        "behavior_label": ProrationBehavior(plan.behavior).label,
        "computed_at": plan.at,
        "effective_at": plan.effective_at,
        "immediate": plan.behavior != ProrationBehavior.NEXT_PERIOD,
        "price": price_label(plan.price),
        "seats": plan.seats,
        "amount": per_interval(
            plan.amount, currency, product.recurring_interval, product.recurring_interval_count
        ),
        "current_amount": _amount_per_period(sub),
        "lines": [
            {
                "label": entry.label,
                "kind": entry.get_kind_display(),
                "period_start": entry.period_start,
                "period_end": entry.period_end,
                "amount": format_amount(entry.amount, currency),
            }
            for entry in plan.entries
        ],
        "invoice_rows": invoice_rows,
        "amount_due_now": due_now,
        "amount_carried_forward": carried,
        "amount_due_now_display": format_amount(due_now, currency),
        "next_order_adjustment": next_order,
        "balance_credit": balance_credit,
        "next_order_adjustment_display": format_amount(next_order, currency),
    }


class ChangePlanOrSeats(ModalAction):
    name = "change_plan"
    label = "Change plan or seats"
    description = (
        "Moves the subscription to another price or number of seats. Preview shows exactly what "
        "will be billed; it is computed again, to the second, when you confirm."
    )
    permission = BILL
    form_class = ChangePlanForm
    submit_label = "Change"
    preview_template = "backoffice/subscription_change_preview.html"

    def is_available(self, request, obj: Subscription) -> bool:
        return _is_live(obj)

    def get_form_kwargs(self, request, obj: Subscription):
        return {"subscription": obj}

    def get_initial(self, request, obj: Subscription):
        return {
            "price_id": obj.price_id,
            "seats": obj.seats,
            "proration_behavior": obj.organization.proration_default,
        }

    def get_facts(self, request, obj: Subscription):
        return [*_basic_facts(obj), ("Price", price_label(obj.price)), ("Seats", obj.seats or "—")]

    def preview(self, request, obj: Subscription, form: ChangePlanForm):
        plan = services.subscription_change_preview(subscription=obj, **form.change_arguments())
        return change_preview_context(plan)

    def perform(self, request, obj: Subscription, form: ChangePlanForm):
        return services.subscription_change(subscription=obj, actor=request.user, **form.change_arguments())

    def get_success_message(self, request, obj, result) -> str:
        subscription, order = result
        if subscription.scheduled_change:
            return "The change is scheduled for the end of the current period."
        if order is None:
            return "Plan changed."
        order.refresh_from_db()
        return (
            f"Plan changed: order {order_label(order)} of {format_amount(order.total, order.currency)} "
            f"is {order.get_status_display().lower()}."
        )


CANCEL_REASON_CHOICES = [
    ("", "—"),
    *((r, r.replace("_", " ").capitalize()) for r in services.CANCELLATION_REASONS),
]


class CancelForm(forms.Form):
    reason = forms.ChoiceField(choices=CANCEL_REASON_CHOICES)
    comment = forms.CharField(
        required=False,
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="The customer's words, or a note; recorded in the audit log.",
    )


class CancelAtPeriodEnd(ModalAction):
    name = "cancel"
    label = "Cancel at period end"
    description = "The subscription ends when the current period ends; the customer keeps access until then."
    permission = CHANGE
    form_class = CancelForm
    submit_label = "Cancel at period end"
    success_message = "The subscription will end at the end of the current period."

    def is_available(self, request, obj: Subscription) -> bool:
        return _is_live(obj) and not obj.cancel_at_period_end

    def get_facts(self, request, obj):
        return _basic_facts(obj)

    def perform(self, request, obj, form):
        return services.subscription_cancel(subscription=obj, actor=request.user, **form.cleaned_data)


class Uncancel(ModalAction):
    name = "uncancel"
    label = "Uncancel"
    title = "Keep the subscription"
    description = "Removes the cancellation: the subscription renews at the end of the period."
    permission = CHANGE
    submit_label = "Keep renewing"
    success_message = "The cancellation is removed."

    def is_available(self, request, obj: Subscription) -> bool:
        return _is_live(obj) and obj.cancel_at_period_end

    def get_facts(self, request, obj: Subscription):
        reason = obj.cancellation_reason.replace("_", " ") or "—"
        return [*_basic_facts(obj), ("Cancellation reason", reason)]

    def perform(self, request, obj, form):
        return services.subscription_uncancel(subscription=obj, actor=request.user)


class RevokeForm(forms.Form):
    reason = forms.CharField(
        max_length=5000, widget=forms.Textarea(attrs={"rows": 3}), help_text="Recorded in the audit log."
    )
    credit = forms.BooleanField(
        required=False,
        label="Credit the unused time to the customer's balance",
        help_text="The unused part of the paid current period, prorated to the second when you confirm; "
        "it pays the customer's next orders.",
    )

    def __init__(self, *args, credit_display: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        if credit_display:
            self.fields[
                "credit"
            ].label = f"Credit the unused time to the customer's balance ({credit_display})"
        else:
            self.fields[
                "credit"
            ].help_text = "Nothing was paid for the current period: there is nothing to credit."


class RevokeNow(ModalAction):
    name = "revoke"
    label = "Revoke now"
    title = "End the subscription now"
    description = (
        "Ends the subscription at once: benefits are revoked now, unpaid orders are voided and dunning "
        "stops. Nothing is refunded to the card; the unused time may be credited to the customer's balance."
    )
    permission = REVOKE
    form_class = RevokeForm
    submit_label = "Revoke now"
    danger = True
    success_message = "The subscription has ended."

    def is_available(self, request, obj: Subscription) -> bool:
        return obj.status != Subscription.Status.CANCELED

    def _credit_display(self, obj: Subscription) -> str:
        amount, tax = services.subscription_revoke_preview(subscription=obj)
        if amount <= 0:
            return ""
        tax_note = f", of which tax {format_amount(tax, obj.currency)}" if tax else ""
        return f"{format_amount(amount, obj.currency)}{tax_note}"

    def get_form_kwargs(self, request, obj: Subscription):
        return {"credit_display": self._credit_display(obj)}

    def get_facts(self, request, obj: Subscription):
        unpaid = obj.orders.filter(status=Order.Status.PENDING).count()
        credit = self._credit_display(obj) or "nothing (no paid time left in the period)"
        return [*_basic_facts(obj), ("Unpaid orders voided", unpaid), ("Unused time worth", credit)]

    def perform(self, request, obj, form):
        return services.subscription_revoke(subscription=obj, actor=request.user, **form.cleaned_data)


class PauseAtPeriodEnd(ModalAction):
    name = "pause"
    label = "Pause at period end"
    description = "No renewal when the current period ends, until the subscription is resumed."
    permission = CHANGE
    submit_label = "Pause at period end"
    success_message = "The subscription will pause at the end of the current period."

    def is_available(self, request, obj: Subscription) -> bool:
        return _is_live(obj) and not obj.pause_at_period_end

    def get_facts(self, request, obj):
        return _basic_facts(obj)

    def perform(self, request, obj, form):
        return services.subscription_pause(subscription=obj, actor=request.user)


class Resume(ModalAction):
    name = "resume"
    label = "Resume"
    description = (
        "Removes a scheduled pause, or restarts a paused subscription: a new period starts now "
        "and is billed at once."
    )
    permission = CHANGE
    submit_label = "Resume"

    def is_available(self, request, obj: Subscription) -> bool:
        return obj.pause_at_period_end or obj.status == Subscription.Status.PAUSED

    def get_facts(self, request, obj: Subscription):
        facts = _basic_facts(obj)
        if obj.status == Subscription.Status.PAUSED:
            facts.append(
                ("Billed now", f"{_amount_per_period(obj)}, before discount and tax, for a new period")
            )
        else:
            facts.append(("Scheduled pause", "will be removed; the subscription renews as usual"))
        return facts

    def perform(self, request, obj, form):
        return services.subscription_resume(subscription=obj, actor=request.user)

    def get_success_message(self, request, obj, result) -> str:
        _, order = result
        if order is None:
            return "The scheduled pause is removed."
        order.refresh_from_db()
        return (
            f"Resumed: order {order_label(order)} of {format_amount(order.total, order.currency)} "
            f"is {order.get_status_display().lower()}."
        )


class TrialExtendForm(forms.Form):
    trial_end = forms.DateField(
        label="New trial end",
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="The day (UTC) the trial ends, at the same time of day as now; the first charge moves with it.",
    )


class ExtendTrial(ModalAction):
    name = "extend_trial"
    label = "Extend trial"
    permission = CHANGE
    form_class = TrialExtendForm
    submit_label = "Extend trial"
    success_message = "The trial is extended."

    def is_available(self, request, obj: Subscription) -> bool:
        return obj.status == Subscription.Status.TRIALING

    def get_initial(self, request, obj: Subscription):
        return {"trial_end": (obj.trial_end.astimezone(UTC) + timedelta(days=7)).date()}

    def get_facts(self, request, obj: Subscription):
        return [*_basic_facts(obj), ("Trial ends", when(obj.trial_end))]

    def perform(self, request, obj: Subscription, form):
        current = obj.trial_end.astimezone(UTC)
        trial_end = datetime.combine(form.cleaned_data["trial_end"], current.time(), tzinfo=UTC)
        return services.subscription_trial_extend(subscription=obj, trial_end=trial_end, actor=request.user)


class EndTrialNow(ModalAction):
    name = "end_trial"
    label = "End trial now"
    description = "The trial ends now: the first paid period starts and is charged at once."
    permission = BILL
    submit_label = "End trial and charge"
    success_message = "The trial has ended."

    def is_available(self, request, obj: Subscription) -> bool:
        return obj.status == Subscription.Status.TRIALING

    def get_facts(self, request, obj: Subscription):
        return [
            *_basic_facts(obj),
            ("Trial ends", when(obj.trial_end)),
            ("Charged now", f"{_amount_per_period(obj)}, before discount and tax"),
        ]

    def perform(self, request, obj, form):
        return services.subscription_trial_end_now(subscription=obj, actor=request.user)


class PeriodEndForm(forms.Form):
    period_end = forms.DateTimeField(
        label="New period end",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local", "step": 1}, format="%Y-%m-%dT%H:%M:%S"),
        help_text="UTC. Only in the future; the next renewal happens then.",
    )
    reason = forms.CharField(
        max_length=5000, widget=forms.Textarea(attrs={"rows": 3}), help_text="Recorded in the audit log."
    )


class CorrectPeriodEnd(ModalAction):
    name = "correct_period_end"
    label = "Correct period end"
    description = "Moves the end of the current period (and so the next renewal). Audited with your reason."
    permission = CHANGE
    form_class = PeriodEndForm
    submit_label = "Correct period end"
    success_message = "The period end is corrected."

    def is_available(self, request, obj: Subscription) -> bool:
        return _is_live(obj)

    def get_initial(self, request, obj: Subscription):
        return {"period_end": obj.current_period_end}

    def get_facts(self, request, obj):
        return _basic_facts(obj)

    def perform(self, request, obj, form):
        return services.subscription_period_end_correct(
            subscription=obj, actor=request.user, **form.cleaned_data
        )


class RecurringProductFilter(admin.SimpleListFilter):
    """Recurring products, bounded: the list of every product of every merchant would not
    fit a sidebar. A product page can link here with ?product=<id> for any product."""

    title = "product"
    parameter_name = "product"
    limit = 50

    def lookups(self, request, model_admin):
        products = list(
            Product.objects.filter(recurring_interval__isnull=False, is_archived=False)
            .select_related("organization")
            .order_by("name", "id")[: self.limit]
        )
        selected = parse_uuid(self.value() or "")
        if selected and all(p.pk != selected for p in products):
            products += list(Product.objects.filter(pk=selected).select_related("organization"))
        return [(str(p.pk), f"{p.name} · {p.organization.name}") for p in products]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        product_id = parse_uuid(self.value())
        return queryset.filter(product_id=product_id) if product_id else queryset.none()


@admin.register(Subscription)
class SubscriptionAdmin(ModalActionsMixin, CustomerEmailSearchMixin, ReadOnlyAdmin):
    # The billing change form, then the timeline (billing/subscriptions/timeline.py).
    change_form_template = "backoffice/subscription_change_form.html"
    modal_actions = [
        ChangePlanOrSeats,
        CancelAtPeriodEnd,
        Uncancel,
        PauseAtPeriodEnd,
        Resume,
        ExtendTrial,
        EndTrialNow,
        CorrectPeriodEnd,
        RevokeNow,
    ]
    list_display = (
        "created",
        "status_badge",
        "customer_email",
        "product",
        "price_display",
        "period_end",
        "cancels",
        "organization",
    )
    list_display_links = ("created",)
    list_filter = (
        "status",
        RecurringProductFilter,
        ("created_at", admin.DateFieldListFilter),
        "cancel_at_period_end",
    )
    list_select_related = ("customer", "product", "organization")
    search_fields = ("customer__email",)
    search_help_text = "A subscription id (exact), or the customer's e-mail."
    show_full_result_count = False
    list_per_page = 50
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "status_badge",
                    "organization",
                    "customer",
                    "product",
                    "price",
                    "price_display",
                    "seats",
                )
            },
        ),
        (
            "Period",
            {
                "fields": (
                    "current_period",
                    "anchor",
                    "cancel_at_period_end",
                    "canceled",
                    "ended",
                    "past_due",
                )
            },
        ),
        ("Trial", {"fields": ("trial",)}),
        ("Discount", {"fields": ("discount", "discount_remaining")}),
        ("Orders", {"fields": ("orders_timeline",)}),
        ("Record", {"fields": ("id", "checkout", "created", "updated", "metadata_pretty")}),
    )

    # --- list columns

    @admin.display(description="created", ordering="created_at")
    def created(self, sub: Subscription):
        return when(sub.created_at)

    @admin.display(description="status", ordering="status")
    def status_badge(self, sub: Subscription):
        return badge(
            sub.get_status_display().lower().replace("_", " "), SUBSCRIPTION_TONES.get(sub.status, "muted")
        )

    @admin.display(description="customer", ordering="customer__email")
    def customer_email(self, sub: Subscription) -> str:
        return sub.customer.email

    @admin.display(description="amount", ordering="amount")
    def price_display(self, sub: Subscription):
        product = sub.product
        price = per_interval(
            sub.amount, sub.currency, product.recurring_interval, product.recurring_interval_count
        )
        return nowrap(price)

    @admin.display(description="cancels", boolean=True, ordering="cancel_at_period_end")
    def cancels(self, sub: Subscription) -> bool:
        return sub.cancel_at_period_end

    @admin.display(description="current period end", ordering="current_period_end")
    def period_end(self, sub: Subscription):
        return when(sub.current_period_end)

    # --- detail

    anchor = when_field("billing_anchor", "billing anchor")
    canceled = when_field("canceled_at", "canceled at")
    ended = when_field("ended_at", "ended at")
    past_due = when_field("past_due_at", "past due since")

    @admin.display(description="current period")
    def current_period(self, sub: Subscription):
        return format_html("{} → {}", when(sub.current_period_start), when(sub.current_period_end))

    @admin.display(description="trial")
    def trial(self, sub: Subscription):
        if sub.trial_start is None and sub.trial_end is None:
            return "No trial."
        return format_html("{} → {}", when(sub.trial_start), when(sub.trial_end))

    @admin.display(description="periods remaining")
    def discount_remaining(self, sub: Subscription) -> str:
        if sub.discount_id is None:
            return "—"
        if sub.discount_periods_remaining is None:
            return "every period (forever)"
        n = sub.discount_periods_remaining
        return f"{n} more billing period{'s' if n != 1 else ''}"

    @admin.display(description="orders")
    def orders_timeline(self, sub: Subscription):
        orders = list(sub.orders.order_by("-created_at")[: TIMELINE_ORDERS + 1])
        more = len(orders) > TIMELINE_ORDERS
        orders = orders[:TIMELINE_ORDERS]
        references = {order.pk: order_payment_references(order) for order in orders}
        payments = payments_for([r for refs in references.values() for r in refs])
        rows = []
        for order in orders:
            attempts = [payment for r in references[order.pk] for payment in payments[r]]
            rows.append(
                {
                    "order": order,
                    "label": order_label(order),
                    "url": admin_change_url("orders", "order", order.pk),
                    "when": when(order.created_at),
                    "status": badge(
                        order.get_status_display().lower(), ORDER_TONES.get(order.status, "muted")
                    ),
                    "total": format_amount(order.total, order.currency),
                    "payments": payment_rows(attempts),
                }
            )
        return render_to_string(
            "backoffice/subscription_orders.html",
            {"rows": rows, "more": more, "limit": TIMELINE_ORDERS, "subscription": sub},
        )

    updated = when_field("updated_at", "updated")

    @admin.display(description="metadata")
    def metadata_pretty(self, sub: Subscription):
        return pretty_json(sub.metadata) if sub.metadata else "—"
