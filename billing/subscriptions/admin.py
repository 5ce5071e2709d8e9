"""Backoffice: subscriptions (read-only: the subscription services write them), with the
timeline of their orders and payments, and the MRR and active-subscription cards."""

from collections import defaultdict
from fractions import Fraction

from django.contrib import admin
from django.db.models import Count, Q, Sum
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import urlencode

from billing.catalog.models import Product
from billing.money import format_amount, round_half_up
from billing.orders.admin import (
    BILLING_CSS,
    ORDER_TONES,
    CustomerEmailSearchMixin,
    currency_totals_metric,
    nowrap,
    payment_rows,
    payments_for,
    when_field,
)
from billing.subscriptions.models import Subscription
from core.admin import ReadOnlyAdmin
from core.backoffice.dashboard import Metric, dashboard
from core.backoffice.display import badge, pretty_json, when
from core.backoffice.search import parse_uuid
from core.backoffice.timeline import admin_change_url, order_label, per_interval

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
class SubscriptionAdmin(CustomerEmailSearchMixin, ReadOnlyAdmin):
    change_form_template = BILLING_CSS
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
        references = [o.reference for o in orders] + [
            f"checkout:{o.checkout_id}" for o in orders if o.checkout_id
        ]
        payments = payments_for(references)
        rows = []
        for order in orders:
            attempts = payments[order.reference] + (
                payments[f"checkout:{order.checkout_id}"] if order.checkout_id else []
            )
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
