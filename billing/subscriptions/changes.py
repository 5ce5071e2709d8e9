"""Changing a subscription's price or seats, with proration to the second.

``change_plan`` computes a change without writing anything; the preview shows it and
``subscription_change`` applies that same plan, so a preview is exactly what is billed.
Proration: r = (period_end - t) / (period_end - period_start) in whole seconds; the unused
part of the old amount is credited and the rest of the new amount debited.

Behaviours: ``invoice`` bills the difference now, ``prorate`` leaves it on the next order,
``next_period`` applies the change at renewal, ``none`` applies it now without proration.
"""

from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction

from accounts.models import ProrationBehavior
from billing.catalog.models import Price
from billing.catalog.pricing import price_subtotal
from billing.money import multiply
from billing.orders.models import BillingReason
from billing.subscriptions.billing import DraftOrder, draft_order
from billing.subscriptions.models import BillingEntry, Subscription
from core.errors import Conflict, InvalidInput

CHANGEABLE = (Subscription.Status.TRIALING, Subscription.Status.ACTIVE, Subscription.Status.PAST_DUE)


@dataclass
class ChangePlan:
    subscription: Subscription
    behavior: str
    at: datetime
    price: Price
    seats: int | None
    amount: int
    effective_at: datetime
    entries: list[BillingEntry] = field(default_factory=list)
    invoice: DraftOrder | None = None  # for ``invoice``: the order billed now

    @property
    def next_order_adjustment(self) -> int:
        return sum(e.amount for e in self.entries) if self.behavior == ProrationBehavior.PRORATE else 0


def check_changeable(subscription: Subscription) -> None:
    if subscription.status not in CHANGEABLE:
        raise Conflict(
            f"A {subscription.status} subscription cannot be changed.", code="subscription_not_changeable"
        )


def proration_fraction(subscription: Subscription, at: datetime) -> Fraction:
    total = int((subscription.current_period_end - subscription.current_period_start).total_seconds())
    left = int((subscription.current_period_end - at).total_seconds())
    return Fraction(max(0, min(left, total)), total) if total > 0 else Fraction(0)


def _new_price(subscription: Subscription, price_id) -> Price:
    if price_id is None or str(price_id) == str(subscription.price_id):
        return subscription.price
    price = (
        Price.objects.select_related("product")
        .filter(organization_id=subscription.organization_id, pk=price_id, is_archived=False)
        .first()
    )
    if price is None:
        raise InvalidInput("No active price with this id.", field="price_id", code="not_found")
    if price.currency != subscription.currency:
        raise InvalidInput(
            f"The subscription bills in {subscription.currency}; this price is in {price.currency}.",
            field="price_id",
            code="currency_mismatch",
        )
    old, new = subscription.product, price.product
    if (new.recurring_interval, new.recurring_interval_count) != (
        old.recurring_interval,
        old.recurring_interval_count,
    ):
        raise InvalidInput(
            "The new price must renew at the same interval as the current one.",
            field="price_id",
            code="interval_mismatch",
        )
    return price


def change_plan(
    *,
    subscription: Subscription,
    at: datetime,
    price_id=None,
    seats: int | None = None,
    behavior: str | None = None,
) -> ChangePlan:
    check_changeable(subscription)
    behavior = behavior or subscription.organization.proration_default
    if behavior not in ProrationBehavior.values:
        raise InvalidInput(
            f"Use one of {', '.join(ProrationBehavior.values)}.",
            field="proration_behavior",
            code="invalid_choice",
        )
    price = _new_price(subscription, price_id)
    if price.type == Price.Type.SEAT_BASED:
        seats = seats if seats is not None else subscription.seats or price.minimum_seats
    elif seats is not None:
        raise InvalidInput("This price is not billed per seat.", field="seats", code="not_seat_based")
    amount = (
        subscription.amount if price.type == Price.Type.CUSTOM else price_subtotal(price=price, seats=seats)
    )
    if price.pk == subscription.price_id and seats == subscription.seats:
        raise InvalidInput(
            "This is the subscription's current price and seats.", code="no_change", field="price_id"
        )
    if subscription.status == Subscription.Status.TRIALING and behavior != ProrationBehavior.NEXT_PERIOD:
        behavior = ProrationBehavior.NONE  # nothing was paid for the trial: nothing to prorate
    plan = ChangePlan(
        subscription=subscription,
        behavior=behavior,
        at=at,
        price=price,
        seats=seats,
        amount=amount,
        effective_at=subscription.current_period_end if behavior == ProrationBehavior.NEXT_PERIOD else at,
    )
    if behavior in (ProrationBehavior.INVOICE, ProrationBehavior.PRORATE):
        plan.entries = _proration_entries(subscription, price, seats, amount, at)
    if behavior == ProrationBehavior.INVOICE and plan.entries:
        plan.invoice = draft_order(
            subscription=subscription,
            entries=plan.entries,
            billing_reason=BillingReason.SUBSCRIPTION_UPDATE,
            period_start=at,
            period_end=subscription.current_period_end,
            apply_discount=False,
        )
    return plan


def _proration_entries(subscription, price, seats, amount, at) -> list[BillingEntry]:
    r = proration_fraction(subscription, at)
    credit, debit = -multiply(subscription.amount, r), multiply(amount, r)
    seats_only = price.pk == subscription.price_id
    if seats_only:
        kinds = (BillingEntry.Kind.SEATS_DECREASE, BillingEntry.Kind.SEATS_INCREASE)
        old_label = f"Unused time on {subscription.seats} seats"
        new_label = f"Remaining time on {seats} seats"
    else:
        kinds = (BillingEntry.Kind.PRORATION_CREDIT, BillingEntry.Kind.PRORATION_DEBIT)
        old_label = f"Unused time on {subscription.product.name}"
        new_label = f"Remaining time on {price.product.name}"
    common = {
        "organization_id": subscription.organization_id,
        "subscription": subscription,
        "currency": subscription.currency,
        "period_start": at,
        "period_end": subscription.current_period_end,
    }
    entries = []
    if credit:
        entries.append(BillingEntry(kind=kinds[0], label=old_label, amount=credit, **common))
    if debit:
        entries.append(BillingEntry(kind=kinds[1], label=new_label, amount=debit, **common))
    return entries
