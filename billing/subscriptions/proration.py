"""Proration: what the rest of the current period is worth, one rule for plan and seat
changes and for revocations with credit.

The unused part of the current period is what was billed for it, after the discount and
less what was refunded, times the share of each billed line still to come:
``(line end - t) / (line end - line start)`` to the second. A period billed once (the cycle
line) gives r x (paid - refunded); after a change, the change's own credit and debit lines
net out the earlier ones, so the value follows the plan the customer is on, at the price
they were billed for it (a change with ``none`` bills nothing and leaves the old value).

A new plan's remaining part carries the discount of the current period (the one its order
was billed with), as the unused part of the old plan does, so an upgrade under 20% off
credits 80% of the old price and debits 80% of the new one (Stripe and Polar alike).
"""

from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction

from django.db.models import Q

from billing.catalog.models import Discount
from billing.catalog.pricing import discount_amount
from billing.money import round_half_up
from billing.orders.models import Order, OrderItem
from billing.subscriptions.models import BillingEntry, Subscription


@dataclass(frozen=True)
class UnusedValue:
    """The unused part of the current period, exact (rounded by the caller, once)."""

    net: Fraction  # in line units: before tax, after discount and refunds
    total: Fraction  # as paid, tax included
    tax: Fraction


def _share(start: datetime | None, end: datetime | None, at: datetime) -> Fraction:
    if start is None or end is None or end <= start:
        return Fraction(0)
    left = int((end - max(at, start)).total_seconds())
    return Fraction(max(0, left), int((end - start).total_seconds()))


def _covers_period(subscription: Subscription, at: datetime) -> Q:
    """Lines billed for the current period and not over at ``at``: its cycle line, and
    prorations that run to its end (an interval change's credit for the old period does not)."""
    start, end = subscription.current_period_start, subscription.current_period_end
    return Q(period_start__gte=start, period_end__gt=at) & (Q(price_id__isnull=False) | Q(period_end=end))


def unused_value(subscription: Subscription, at: datetime, *, unbilled: bool) -> UnusedValue:
    """What is left at ``at`` of what the current period was billed. ``unbilled`` counts
    what is owed but not paid yet (pending orders and entries for the next order): a change
    credits it, since the customer will pay it; a revocation voids it, so it does not."""
    if subscription.status == Subscription.Status.CANCELED:
        return UnusedValue(Fraction(0), Fraction(0), Fraction(0))
    statuses = [*Order.PAID_STATUSES, *([Order.Status.PENDING] if unbilled else [])]
    items = (
        OrderItem.objects.filter(_covers_period(subscription, at))
        .filter(order__subscription=subscription, order__status__in=statuses)
        .select_related("order")
    )
    by_order: dict = {}
    for item in items:
        by_order.setdefault(item.order_id, (item.order, []))[1].append(item)
    net = total = tax = Fraction(0)
    fallback = None  # tax ratios for an order without a net of its own (a credit order)
    lines = []
    for order, order_items in by_order.values():
        cycle_amount = sum(i.amount for i in order_items if i.price_id is not None)
        left = Fraction(0)
        for item in order_items:
            amount = Fraction(item.amount)
            if item.price_id is not None and cycle_amount > 0 and order.discount_amount:
                amount -= Fraction(order.discount_amount * item.amount, cycle_amount)
            left += amount * _share(item.period_start, item.period_end, at)
        if order.total > 0:
            left *= Fraction(order.total - order.refunded_amount, order.total)
        ratios = (Fraction(order.total, order.net), Fraction(order.tax, order.net)) if order.net > 0 else None
        fallback = fallback or ratios
        lines.append((left, ratios))
    for left, ratios in lines:
        total_ratio, tax_ratio = ratios or fallback or (Fraction(1), Fraction(0))
        net += left
        total += left * total_ratio
        tax += left * tax_ratio
    if unbilled:
        for entry in BillingEntry.objects.filter(
            subscription=subscription,
            order__isnull=True,
            period_start__gte=subscription.current_period_start,
            period_end=subscription.current_period_end,
        ):
            left = entry.amount * _share(entry.period_start, entry.period_end, at)
            net += left
            total += left
    return UnusedValue(net, total, tax)


def period_discount(subscription: Subscription) -> Discount | None:
    """The discount the current period was billed with (its order's), which the rest of the
    period keeps: a discount changed mid-period applies from the next order on, and one
    that ends with this period still covers it."""
    order = (
        Order.objects.filter(
            subscription=subscription,
            period_start=subscription.current_period_start,
            discount__isnull=False,
        )
        .exclude(status=Order.Status.VOID)
        .select_related("discount")
        .order_by("-created_at")
        .first()
    )
    return order.discount if order is not None else None


def remaining_amount(*, amount: int, currency: str, discount: Discount | None, fraction: Fraction) -> int:
    """The debit for the rest of the period: ``fraction`` of the per-period amount after the
    discount that applies to it, rounded once, half-up."""
    if discount is not None:
        amount -= discount_amount(discount=discount, subtotal=amount, currency=currency)
    return round_half_up(amount * fraction)


def unused_credit(subscription: Subscription, at: datetime) -> int:
    """The credit line of a change at ``at``: the unused part, in line units (negative)."""
    return -max(0, round_half_up(unused_value(subscription, at, unbilled=True).net))


def revoke_credit_amounts(subscription: Subscription, at: datetime) -> tuple[int, int]:
    """(amount, tax inside it) a revocation at ``at`` gives back: the unused part of what
    was paid, tax included."""
    value = unused_value(subscription, at, unbilled=False)
    amount = max(0, round_half_up(value.total))
    return amount, min(max(0, round_half_up(value.tax)), amount)
