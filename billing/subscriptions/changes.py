"""Changing a subscription's price or seats, with proration to the second.

``change_plan`` computes a change without writing anything; the preview shows it and
``subscription_change`` applies that same plan, so a preview is exactly what is billed.
Proration (``proration``): the unused part of what the current period was billed (after its
discount, less refunds) is credited, and the new plan's remaining part is debited with the
discount that applies to it, r = (period_end - t) / (period_end - period_start).

Behaviours: ``invoice`` bills the difference now, ``prorate`` leaves it on the next order,
``next_period`` applies the change at renewal, ``none`` applies it now without proration.
A change to another interval (month to year, or another count) starts a new period now,
billed now: the unused part is credited on that order (``none``: not credited).

A scheduled change (``next_period``) holds only what it changes: ``price_id`` and/or
``seats`` (null: unchanged). A later change of the other one keeps it; a change of the same
one supersedes that part; ``replace_scheduled_change`` drops it (or, for ``next_period``,
replaces it instead of merging).
"""

import copy
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction

from accounts.models import ProrationBehavior
from billing.catalog.models import Price
from billing.catalog.pricing import price_subtotal
from billing.orders.models import BillingReason
from billing.subscriptions.billing import DraftOrder, draft_order, draft_order_preview_settle
from billing.subscriptions.models import BillingEntry, Subscription
from billing.subscriptions.periods import boundary
from billing.subscriptions.proration import period_discount, remaining_amount, unused_credit
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
    invoice: DraftOrder | None = None  # the order billed now (``invoice``, interval changes)
    scheduled_change: dict | None = None  # what the subscription's scheduled change becomes
    # An interval change: the new period (from ``at``) and the discount countdown after it.
    period_end: datetime | None = None
    discount_applies: bool = False
    discount_periods_remaining: int | None = None

    @property
    def next_order_adjustment(self) -> int:
        return sum(e.amount for e in self.entries) if self.behavior == ProrationBehavior.PRORATE else 0

    @property
    def interval_change(self) -> bool:
        return self.period_end is not None

    @property
    def amount_due_now(self) -> int:
        return self.invoice.order.due if self.invoice is not None else 0

    @property
    def amount_carried_forward(self) -> int:
        return self.invoice.order.carried_forward if self.invoice is not None else 0


def check_changeable(subscription: Subscription) -> None:
    if subscription.status not in CHANGEABLE:
        raise Conflict(
            f"A {subscription.status} subscription cannot be changed.", code="subscription_not_changeable"
        )


def proration_fraction(subscription: Subscription, at: datetime) -> Fraction:
    total = int((subscription.current_period_end - subscription.current_period_start).total_seconds())
    left = int((subscription.current_period_end - at).total_seconds())
    return Fraction(max(0, min(left, total)), total) if total > 0 else Fraction(0)


def _price(subscription: Subscription, price_id) -> Price:
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
    if not price.product.is_recurring:
        raise InvalidInput("This price is not recurring.", field="price_id", code="not_recurring")
    return price


def _interval(product) -> tuple[str, int]:
    return product.recurring_interval, product.recurring_interval_count


def _scheduled(subscription: Subscription) -> dict:
    change = subscription.scheduled_change or {}
    return {"price_id": change.get("price_id"), "seats": change.get("seats")}


def _seats_for(price: Price, seats: int | None, current: int | None) -> int | None:
    if price.type == Price.Type.SEAT_BASED:
        return seats if seats is not None else current or price.minimum_seats
    if seats is not None:
        raise InvalidInput("This price is not billed per seat.", field="seats", code="not_seat_based")
    return None


def _amount(subscription: Subscription, price: Price, seats: int | None) -> int:
    if price.type == Price.Type.CUSTOM:
        return subscription.amount
    return price_subtotal(price=price, seats=seats)


def change_plan(
    *,
    subscription: Subscription,
    at: datetime,
    price_id=None,
    seats: int | None = None,
    behavior: str | None = None,
    replace_scheduled_change: bool = False,
) -> ChangePlan:
    check_changeable(subscription)
    behavior = behavior or subscription.organization.proration_default
    if behavior not in ProrationBehavior.values:
        raise InvalidInput(
            f"Use one of {', '.join(ProrationBehavior.values)}.",
            field="proration_behavior",
            code="invalid_choice",
        )
    price_given = price_id is not None and str(price_id) != str(subscription.price_id)
    if behavior == ProrationBehavior.NEXT_PERIOD:
        return _scheduled_plan(subscription, at, price_id, seats, replace_scheduled_change)
    price = _price(subscription, price_id) if price_given else subscription.price
    seats = _seats_for(price, seats, subscription.seats)
    amount = _amount(subscription, price, seats)
    if price.pk == subscription.price_id and seats == subscription.seats:
        if not (replace_scheduled_change and subscription.scheduled_change):
            raise InvalidInput(
                "This is the subscription's current price and seats.", code="no_change", field="price_id"
            )
        # Only the scheduled change is dropped: nothing is billed.
        return ChangePlan(subscription, behavior, at, price, seats, amount, effective_at=at)
    scheduled = _scheduled(subscription)
    if replace_scheduled_change:
        scheduled = {"price_id": None, "seats": None}
    else:  # what this change sets now supersedes the same part of the scheduled change
        if price.pk != subscription.price_id:
            scheduled["price_id"] = None
        if seats != subscription.seats:
            scheduled["seats"] = None
        _check_scheduled_still_fits(subscription, scheduled, price, seats)
    interval_change = _interval(price.product) != _interval(subscription.product)
    if subscription.status == Subscription.Status.TRIALING:
        behavior = ProrationBehavior.NONE  # nothing was paid for the trial: nothing to prorate
        interval_change = False  # the trial keeps its end; the new interval starts after it
    plan = ChangePlan(
        subscription=subscription,
        behavior=behavior,
        at=at,
        price=price,
        seats=seats,
        amount=amount,
        effective_at=at,
        scheduled_change=scheduled if any(v is not None for v in scheduled.values()) else None,
    )
    if interval_change:
        _interval_plan(plan)
    elif behavior in (ProrationBehavior.INVOICE, ProrationBehavior.PRORATE):
        plan.entries = _proration_entries(subscription, price, seats, amount, at)
        if behavior == ProrationBehavior.INVOICE and plan.entries:
            plan.invoice = draft_order(
                subscription=subscription,
                entries=plan.entries,
                billing_reason=BillingReason.SUBSCRIPTION_UPDATE,
                period_start=at,
                period_end=subscription.current_period_end,
                apply_discount=False,
                product_id=price.product_id,
            )
    if plan.invoice is not None:
        draft_order_preview_settle(plan.invoice)
    return plan


def _check_scheduled_still_fits(subscription, scheduled: dict, price: Price, seats: int | None) -> None:
    """A kept scheduled plan change must still price with the seats this change sets."""
    if scheduled["price_id"] is None:
        return
    future = Price.objects.filter(pk=scheduled["price_id"]).first()
    if future is None or future.type != Price.Type.SEAT_BASED:
        return
    future_seats = scheduled["seats"] if scheduled["seats"] is not None else seats
    try:
        price_subtotal(price=future, seats=future_seats)
    except InvalidInput as exc:
        raise InvalidInput(
            f"{exc.detail} (for the scheduled change; send replace_scheduled_change to drop it).",
            field="seats",
            code=exc.code,
        ) from exc


def _scheduled_plan(subscription, at, price_id, seats, replace: bool) -> ChangePlan:
    """``next_period``: merge into (or replace) the scheduled change; applied at renewal."""
    scheduled = {"price_id": None, "seats": None} if replace else _scheduled(subscription)
    if price_id is not None:
        scheduled["price_id"] = None if str(price_id) == str(subscription.price_id) else str(price_id)
    if seats is not None:
        scheduled["seats"] = seats
    price = _price(subscription, scheduled["price_id"]) if scheduled["price_id"] else subscription.price
    if price.type != Price.Type.SEAT_BASED:
        if seats is not None:
            raise InvalidInput("This price is not billed per seat.", field="seats", code="not_seat_based")
        scheduled["seats"] = None
    elif scheduled["seats"] == subscription.seats and scheduled["price_id"] is None:
        scheduled["seats"] = None
    effective_seats = _seats_for(price, scheduled["seats"], subscription.seats)
    amount = _amount(subscription, price, effective_seats)
    if scheduled == _scheduled(subscription):
        raise InvalidInput(
            "This is the subscription's current price and seats, or the change already scheduled.",
            code="no_change",
            field="price_id",
        )
    return ChangePlan(
        subscription=subscription,
        behavior=ProrationBehavior.NEXT_PERIOD,
        at=at,
        price=price,
        seats=effective_seats,
        amount=amount,
        effective_at=subscription.current_period_end,
        scheduled_change=scheduled if any(v is not None for v in scheduled.values()) else None,
    )


def _interval_plan(plan: ChangePlan) -> None:
    """Another interval: the unused part is credited (unless ``none``), a new period starts
    now and is billed now with the discount a renewal would give it, pending entries too."""
    subscription, at, product = plan.subscription, plan.at, plan.price.product
    plan.period_end = boundary(at, product.recurring_interval, product.recurring_interval_count, 1)
    remaining = subscription.discount_periods_remaining
    plan.discount_applies = subscription.discount is not None and remaining != 0
    if subscription.discount is None or remaining == 0:
        plan.discount_periods_remaining = None
    else:
        plan.discount_periods_remaining = None if remaining is None else remaining - 1
    if plan.behavior == ProrationBehavior.PRORATE:
        plan.behavior = ProrationBehavior.INVOICE  # a new period is billed when it starts
    common = _entry_fields(subscription, at)
    if plan.behavior == ProrationBehavior.INVOICE:
        credit = unused_credit(subscription, at)
        if credit:
            plan.entries.append(
                BillingEntry(
                    kind=BillingEntry.Kind.PRORATION_CREDIT,
                    label=f"Unused time on {subscription.product.name}",
                    amount=credit,
                    **common,
                )
            )
    future = copy.copy(subscription)
    future.price, future.product, future.seats, future.amount = plan.price, product, plan.seats, plan.amount
    if not plan.discount_applies:
        future.discount = None
    seats = f" ({plan.seats} seats)" if plan.seats else ""
    cycle = BillingEntry(
        **{**common, "subscription": future, "period_end": plan.period_end},
        kind=BillingEntry.Kind.CYCLE,
        label=f"{product.name}{seats} · {at:%b %d, %Y} to {plan.period_end:%b %d, %Y}",
        amount=plan.amount,
    )
    pending = list(BillingEntry.objects.filter(subscription=subscription, order__isnull=True))
    plan.invoice = draft_order(
        subscription=future,
        entries=[cycle, *plan.entries, *pending],
        billing_reason=BillingReason.SUBSCRIPTION_UPDATE,
        period_start=at,
        period_end=plan.period_end,
        apply_discount=plan.discount_applies,
        product_id=product.pk,
    )
    plan.entries = [cycle, *plan.entries]


def _entry_fields(subscription: Subscription, at: datetime) -> dict:
    return {
        "organization_id": subscription.organization_id,
        "subscription": subscription,
        "currency": subscription.currency,
        "period_start": at,
        "period_end": subscription.current_period_end,
    }


def _proration_entries(subscription, price, seats, amount, at) -> list[BillingEntry]:
    """The unused part of what was billed (``proration.unused_credit``) and the new plan's
    remaining part with the period's discount."""
    discount = period_discount(subscription)
    credit = unused_credit(subscription, at)
    debit = remaining_amount(
        amount=amount,
        currency=subscription.currency,
        discount=discount,
        fraction=proration_fraction(subscription, at),
    )
    seats_only = price.pk == subscription.price_id
    off = " (discounted)" if discount is not None else ""
    if seats_only:
        kinds = (BillingEntry.Kind.SEATS_DECREASE, BillingEntry.Kind.SEATS_INCREASE)
        old_label = f"Unused time on {subscription.seats} seats"
        new_label = f"Remaining time on {seats} seats{off}"
    else:
        kinds = (BillingEntry.Kind.PRORATION_CREDIT, BillingEntry.Kind.PRORATION_DEBIT)
        old_label = f"Unused time on {subscription.product.name}"
        new_label = f"Remaining time on {price.product.name}{off}"
    common = _entry_fields(subscription, at)
    entries = []
    if credit:
        entries.append(BillingEntry(kind=kinds[0], label=old_label, amount=credit, **common))
    if debit:
        entries.append(BillingEntry(kind=kinds[1], label=new_label, amount=debit, **common))
    return entries
