"""A customer's story for the backoffice: orders, subscriptions, payments and checkouts as
one list of events, newest first.

``customer_timeline(customer)`` runs one query per source (four in all), each bounded, and
never touches a related row it did not fetch with ``select_related``. The Customer change
page shows it (``{% customer_timeline original %}`` from ``core/templatetags/backoffice_timeline.py``).
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.contrib.admin.utils import quote
from django.urls import NoReverseMatch, reverse

from billing.checkout.models import Checkout
from billing.money import format_amount
from billing.orders.models import Order
from billing.payments.models import Payment
from billing.subscriptions.models import Subscription
from core import clock

TIMELINE_LIMIT = 100

# For events at the same instant, newest first shows the consequence above its cause:
# the order above the subscription above the payment above the checkout.
_KIND_RANK = {"checkout": 0, "payment": 1, "subscription": 2, "order": 3}


@dataclass(frozen=True)
class TimelineEvent:
    when: datetime
    kind: str  # "order", "subscription", "payment" or "checkout"
    title: str
    detail: str = ""
    url: str | None = None
    tone: str = "muted"  # a core.backoffice.display badge tone


# --- shared wording ----------------------------------------------------------------------

_INTERVAL_NAMES = {"day": "day", "week": "week", "month": "month", "year": "year"}


def per_interval(amount: int, currency: str, interval: str | None, count: int = 1) -> str:
    """``$20.00 / month``, ``$50.00 / 3 months``; just the amount for a one-time product."""
    money = format_amount(amount, currency)
    if not interval:
        return money
    name = _INTERVAL_NAMES.get(interval, interval)
    return f"{money} / {name}" if count == 1 else f"{money} / {count} {name}s"


def tax_rate_label(bps: int) -> str:
    """2000 -> ``20%``, 825 -> ``8.25%``."""
    return f"{Decimal(bps).scaleb(-2).normalize():f}%"


def order_label(order: Order) -> str:
    return order.invoice_number or f"#{str(order.pk)[:8]}"


def admin_change_url(app_label: str, model_name: str, pk) -> str | None:
    try:
        return reverse(f"admin:{app_label}_{model_name}_change", args=[quote(pk)])
    except NoReverseMatch:
        return None


def _day(value: datetime) -> str:
    return value.strftime("%Y-%m-%d")


# --- the sources ---------------------------------------------------------------------------


def _order_events(customer, limit: int) -> list[TimelineEvent]:
    events = []
    orders = Order.objects.filter(customer=customer).order_by("-created_at")[:limit]
    for order in orders:
        url = admin_change_url("orders", "order", order.pk)
        total = format_amount(order.total, order.currency)
        reason = order.get_billing_reason_display().lower()
        if order.paid_at is not None:
            detail = f"{total} · {reason}"
            if order.refunded_amount:
                detail += f" · refunded {format_amount(order.refunded_amount, order.currency)}"
            events.append(
                TimelineEvent(order.paid_at, "order", f"Order {order_label(order)} paid", detail, url, "good")
            )
        else:
            tone = {"pending": "warn", "void": "muted"}.get(order.status, "info")
            due = f"{format_amount(order.due, order.currency)} due" if order.status == "pending" else total
            events.append(
                TimelineEvent(
                    order.created_at,
                    "order",
                    f"Order {order_label(order)} {order.get_status_display().lower()}",
                    f"{due} · {reason}",
                    url,
                    tone,
                )
            )
    return events


def _subscription_events(customer, limit: int, now: datetime) -> list[TimelineEvent]:
    events = []
    subscriptions = (
        Subscription.objects.filter(customer=customer)
        .select_related("product")
        .order_by("-created_at")[:limit]
    )
    for sub in subscriptions:
        url = admin_change_url("subscriptions", "subscription", sub.pk)
        product = sub.product
        price = per_interval(
            sub.amount, sub.currency, product.recurring_interval, product.recurring_interval_count
        )
        detail = price + (f" · trial until {_day(sub.trial_end)}" if sub.trial_end else "")
        events.append(
            TimelineEvent(
                sub.created_at, "subscription", f"Subscribed to {product.name}", detail, url, "info"
            )
        )
        if sub.trial_end is not None and sub.trial_end <= now:
            events.append(
                TimelineEvent(
                    sub.trial_end, "subscription", f"Trial of {product.name} ended", price, url, "info"
                )
            )
        if sub.past_due_at is not None:
            events.append(
                TimelineEvent(
                    sub.past_due_at,
                    "subscription",
                    f"Subscription to {product.name} past due",
                    price,
                    url,
                    "bad",
                )
            )
        if sub.canceled_at is not None:
            ending = ""
            if sub.ended_at is None and sub.cancel_at_period_end:
                ending = f"ends at the period end, {_day(sub.current_period_end)}"
            events.append(
                TimelineEvent(
                    sub.canceled_at,
                    "subscription",
                    f"Subscription to {product.name} canceled",
                    ending,
                    url,
                    "warn",
                )
            )
        if sub.ended_at is not None:
            events.append(
                TimelineEvent(
                    sub.ended_at, "subscription", f"Subscription to {product.name} ended", "", url, "muted"
                )
            )
    return events


_PAYMENT_TONES = {"succeeded": "good", "failed": "bad", "canceled": "muted"}


def _payment_events(customer, limit: int) -> list[TimelineEvent]:
    events = []
    payments = Payment.objects.filter(customer=customer).order_by("-created_at")[:limit]
    for payment in payments:
        amount = format_amount(payment.amount, payment.currency)
        if payment.status == Payment.Status.FAILED:
            when = payment.failed_at or payment.created_at
            reason = payment.decline_message or payment.decline_code or "declined"
            if payment.decline_code and payment.decline_message:
                reason += f" ({payment.decline_code})"
            detail = f"attempt {payment.attempt} · {reason}"
        else:
            when = payment.succeeded_at or payment.created_at
            detail = f"attempt {payment.attempt} · {payment.get_trigger_display().lower()}"
            if payment.amount_refunded:
                detail += f" · refunded {format_amount(payment.amount_refunded, payment.currency)}"
        events.append(
            TimelineEvent(
                when,
                "payment",
                f"Payment of {amount} {payment.get_status_display().lower()}",
                detail,
                admin_change_url("payments", "payment", payment.pk),
                _PAYMENT_TONES.get(payment.status, "info"),
            )
        )
    return events


def _checkout_events(customer, limit: int) -> list[TimelineEvent]:
    events = []
    checkouts = (
        Checkout.objects.filter(customer=customer).select_related("product").order_by("-created_at")[:limit]
    )
    for checkout in checkouts:
        url = admin_change_url("checkout", "checkout", checkout.pk)
        product = checkout.product.name
        total = format_amount(checkout.total, checkout.currency)
        if checkout.status == Checkout.Status.SUCCEEDED:
            event = TimelineEvent(
                checkout.succeeded_at or checkout.created_at,
                "checkout",
                f"Checkout for {product} completed",
                total,
                url,
                "good",
            )
        elif checkout.status == Checkout.Status.EXPIRED:
            event = TimelineEvent(
                checkout.expires_at, "checkout", f"Checkout for {product} expired", total, url, "muted"
            )
        elif checkout.status == Checkout.Status.FAILED:
            event = TimelineEvent(
                checkout.created_at,
                "checkout",
                f"Checkout for {product} failed",
                checkout.payment_error,
                url,
                "bad",
            )
        else:
            detail = total + (f" · last error: {checkout.payment_error}" if checkout.payment_error else "")
            event = TimelineEvent(
                checkout.created_at, "checkout", f"Checkout for {product} started", detail, url, "info"
            )
        events.append(event)
    return events


def customer_timeline(customer, *, limit: int = TIMELINE_LIMIT, user=None) -> list[TimelineEvent]:
    """The customer's latest ``limit`` events, newest first. With ``user``, only the kinds
    of record that user may view. Four queries at most, whatever the history's size."""

    def may(perm: str) -> bool:
        return user is None or user.has_perm(perm)

    events: list[TimelineEvent] = []
    if may("orders.view_order"):
        events += _order_events(customer, limit)
    if may("subscriptions.view_subscription"):
        events += _subscription_events(customer, limit, clock.now())
    if may("payments.view_payment"):
        events += _payment_events(customer, limit)
    if may("checkout.view_checkout"):
        events += _checkout_events(customer, limit)
    events.sort(key=lambda e: (e.when, _KIND_RANK[e.kind]), reverse=True)
    return events[:limit]
