"""Renewals: find subscriptions whose period ended, claim them in chunks, cycle each once.

The claim is a conditional UPDATE of ``renewal_claimed_at`` over
``FOR NO KEY UPDATE SKIP LOCKED`` rows, so any number of workers share the work without coordination; a claim older than
``CLAIM_TTL`` (a killed worker) is taken again. A chunk is cycled in one transaction with
bulk writes; the unique (subscription, period_start, billing_reason) constraint on orders
makes a second order for a period impossible even if every other guard failed. Every order
that owes money is written with its first attempt due (``next_payment_attempt_at``), so the
payments enqueued after commit (outside any lock) are only the prompt path: a lost message or
a killed worker leaves the order to the collection sweep (``dunning.order_collections_sweep``).
"""

import json
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

from django.db import connection, transaction

from accounts.models import Customer, Organization
from billing.catalog.models import Discount, Price, Product
from billing.catalog.pricing import price_subtotal
from billing.ledger.wallet import wallet_apply, wallet_funded_customers, wallet_lock_available
from billing.orders.locks import invoice_counters_lock
from billing.orders.models import BillingReason, Order
from billing.orders.services import orders_event_record, orders_paid_recorded
from billing.subscriptions.billing import DraftOrder, draft_order, draft_order_saved, draft_order_settle
from billing.subscriptions.events import subscriptions_events_record_bulk
from billing.subscriptions.models import BillingEntry, Subscription
from billing.subscriptions.periods import period_end_after
from core import clock
from core.bulk import copy_insert
from core.faults import crash_point
from core.locks import lock_many
from core.retry import retry_on_conflict

logger = logging.getLogger("recur.renewals")

CLAIM_TTL = timedelta(minutes=10)
CHUNK = 500
RENEWING = (Subscription.Status.TRIALING, Subscription.Status.ACTIVE, Subscription.Status.PAST_DUE)


def renewals_claim(*, now: datetime, limit: int = CHUNK) -> list[UUID]:
    """Claim up to ``limit`` due subscriptions for this worker."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE subscriptions_subscription SET renewal_claimed_at = %s
            WHERE id IN (
                SELECT id FROM subscriptions_subscription
                WHERE status = ANY(%s) AND current_period_end <= %s
                  AND (renewal_claimed_at IS NULL OR renewal_claimed_at < %s)
                ORDER BY current_period_end
                LIMIT %s
                FOR NO KEY UPDATE SKIP LOCKED
            )
            RETURNING id
            """,
            [now, [str(s) for s in RENEWING], now, now - CLAIM_TTL, limit],
        )
        return [row[0] for row in cursor.fetchall()]


@dataclass
class CycleResult:
    cycled: int = 0
    ended: int = 0
    paused: int = 0
    orders: list[UUID] = field(default_factory=list)  # orders awaiting payment


def _label(subscription: Subscription, start: datetime, end: datetime) -> str:
    seats = f" ({subscription.seats} seats)" if subscription.seats else ""
    return f"{subscription.product.name}{seats} · {start:%b %d, %Y} to {end:%b %d, %Y}"


def _apply_scheduled_change(subscription: Subscription) -> None:
    """Only what the change names moves (null: unchanged). Another interval re-anchors the
    subscription on the period that starts now."""
    change = subscription.scheduled_change or {}
    old_interval = (subscription.product.recurring_interval, subscription.product.recurring_interval_count)
    if change.get("price_id"):
        subscription.price = Price.objects.select_related("product").get(pk=change["price_id"])
        subscription.product = subscription.price.product
    price = subscription.price
    if price.type != Price.Type.SEAT_BASED:
        subscription.seats = None
    elif change.get("seats") is not None:
        subscription.seats = change["seats"]
    else:
        subscription.seats = subscription.seats or price.minimum_seats
    if price.type != Price.Type.CUSTOM:
        subscription.amount = price_subtotal(price=price, seats=subscription.seats, custom_amount=None)
    if (
        subscription.product.recurring_interval,
        subscription.product.recurring_interval_count,
    ) != old_interval:
        subscription.billing_anchor = subscription.current_period_end
    subscription.scheduled_change = None


def _cycle_one(
    subscription: Subscription, pending: list[BillingEntry], now: datetime
) -> tuple[str, DraftOrder | None]:
    """Decide and apply one subscription's renewal in memory. Returns (outcome, draft order)."""
    end = subscription.current_period_end
    if subscription.cancel_at_period_end:
        subscription.status = Subscription.Status.CANCELED
        subscription.ended_at = end
        subscription.canceled_at = subscription.canceled_at or now
        subscription.benefits_revoke_at = end  # a cancellation: access lasts the paid period, no grace
        return "ended", None
    if subscription.pause_at_period_end:
        subscription.status = Subscription.Status.PAUSED
        subscription.paused_at = end
        subscription.pause_at_period_end = False
        return "paused", None
    if subscription.scheduled_change:
        _apply_scheduled_change(subscription)
    reason = BillingReason.SUBSCRIPTION_CYCLE
    if subscription.status == Subscription.Status.TRIALING:
        reason = BillingReason.SUBSCRIPTION_CYCLE_AFTER_TRIAL
        subscription.status = Subscription.Status.ACTIVE
    product = subscription.product
    start = end
    new_end = period_end_after(
        subscription.billing_anchor, product.recurring_interval, product.recurring_interval_count, start
    )
    subscription.current_period_start, subscription.current_period_end = start, new_end

    apply_discount = subscription.discount is not None and subscription.discount_periods_remaining != 0
    if subscription.discount is not None and subscription.discount_periods_remaining == 0:
        subscription.discount = None  # its duration ran out
        subscription.discount_periods_remaining = None
    elif apply_discount and subscription.discount_periods_remaining is not None:
        subscription.discount_periods_remaining -= 1

    cycle = BillingEntry(
        organization_id=subscription.organization_id,
        subscription=subscription,
        kind=BillingEntry.Kind.CYCLE,
        label=_label(subscription, start, new_end),
        amount=subscription.amount,
        currency=subscription.currency,
        period_start=start,
        period_end=new_end,
    )
    draft = draft_order(
        subscription=subscription,
        entries=[cycle, *pending],
        billing_reason=reason,
        period_start=start,
        period_end=new_end,
        apply_discount=apply_discount,
    )
    return "cycled", draft


# (column, SQL type, value getter) written back for every cycled subscription in one UPDATE.
UPDATED_COLUMNS = (
    ("status", "text", lambda s: s.status),
    ("price_id", "uuid", lambda s: s.price_id),
    ("product_id", "uuid", lambda s: s.product_id),
    ("seats", "integer", lambda s: s.seats),
    ("amount", "bigint", lambda s: s.amount),
    ("scheduled_change", "jsonb", lambda s: json.dumps(s.scheduled_change) if s.scheduled_change else None),
    ("billing_anchor", "timestamptz", lambda s: s.billing_anchor),
    ("current_period_start", "timestamptz", lambda s: s.current_period_start),
    ("current_period_end", "timestamptz", lambda s: s.current_period_end),
    ("ended_at", "timestamptz", lambda s: s.ended_at),
    ("canceled_at", "timestamptz", lambda s: s.canceled_at),
    ("paused_at", "timestamptz", lambda s: s.paused_at),
    ("pause_at_period_end", "boolean", lambda s: s.pause_at_period_end),
    ("discount_id", "uuid", lambda s: s.discount_id),
    ("discount_periods_remaining", "integer", lambda s: s.discount_periods_remaining),
    ("benefits_revoke_at", "timestamptz", lambda s: s.benefits_revoke_at),
)


def _write_back(subscriptions: list[Subscription], now: datetime) -> None:
    """One UPDATE ... FROM unnest(arrays) for the whole chunk (Django's bulk_update builds a
    CASE per column and row, which dominated the renewal time)."""
    if not subscriptions:
        return
    columns = ", ".join(f"{name} = v.{name}" for name, _, _ in UPDATED_COLUMNS)
    arrays = ", ".join(f"%s::{sql_type}[]" for _, sql_type, _ in UPDATED_COLUMNS)
    names = ", ".join(name for name, _, _ in UPDATED_COLUMNS)
    params = [[s.pk for s in subscriptions]]
    params += [[getter(s) for s in subscriptions] for _, _, getter in UPDATED_COLUMNS]
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE subscriptions_subscription AS t
            SET {columns}, renewal_claimed_at = NULL, updated_at = %s
            FROM unnest(%s::uuid[], {arrays}) AS v(id, {names})
            WHERE t.id = v.id
            """,
            [now, *params],
        )


def _apply_wallets(drafts: list[DraftOrder]) -> None:
    """Let customers' wallets pay their orders: one query per chunk finds the customers whose
    wallet holds money; only those are locked and read (in the chunk's transaction)."""
    funded = wallet_funded_customers(d.order.customer_id for d in drafts if d.order.total > 0)
    # Customers whose order credits their wallet are locked with them, before any ledger
    # balance or invoice counter (the lock order of core.locks).
    credited = {(d.order.customer_id, d.order.currency) for d in drafts if d.wallet_credit > 0}
    if not funded and not credited:
        return
    available = wallet_lock_available(funded | credited)
    for draft in drafts:
        key = (draft.order.customer_id, draft.order.currency)
        if available.get(key, 0):  # money to spend, or owed money to collect
            available[key] -= wallet_apply(order=draft.order, available=available[key])


def _save(drafts: list[DraftOrder], subscriptions: list[Subscription], now: datetime) -> list[UUID]:
    _apply_wallets(drafts)
    # Orders paid at once are numbered below: the chunk's counters in one ordered lock.
    invoice_counters_lock(d.order.organization_id for d in drafts if d.order.due <= 0 <= d.order.total)
    for draft in drafts:
        draft_order_settle(draft, now)  # nothing to collect: paid at once, numbered here
    copy_insert([d.order for d in drafts])
    copy_insert([item for d in drafts for item in d.items])
    new_entries, consumed = [], defaultdict(list)
    for d in drafts:
        for entry in d.entries:
            if entry._state.adding:
                entry.order = d.order
                new_entries.append(entry)
            else:
                consumed[d.order.pk].append(entry.pk)
    copy_insert(new_entries)
    for order_id, entry_ids in consumed.items():
        BillingEntry.objects.filter(pk__in=entry_ids).update(order_id=order_id)
    # The chunk's events in the same transaction, one insert per type, payloads from memory.
    orders = [d.order for d in drafts]
    orders_event_record(type="order.created", orders=orders)
    orders_paid_recorded([o for o in orders if o.status == Order.Status.PAID])  # postings, order.paid
    for draft in drafts:
        if draft.wallet_credit:
            draft_order_saved(draft, paid_recorded=True)  # the credit's posting to the wallet
    _write_back(subscriptions, now)
    return [d.order.pk for d in drafts if d.order.status == Order.Status.PENDING]


# The event each renewal outcome records for its subscription.
OUTCOME_EVENTS = {
    "cycled": "subscription.cycled",
    "ended": "subscription.updated",
    "paused": "subscription.paused",
}


def _attach_related(subscriptions: list[Subscription]) -> None:
    """Load each related object once per chunk (a chunk shares few products and prices)."""
    related = {
        "product": Product,
        "price": Price,
        "customer": Customer,
        "organization": Organization,
        "discount": Discount,
    }
    for name, model in related.items():
        ids = {getattr(s, f"{name}_id") for s in subscriptions} - {None}
        objects = model.objects.in_bulk(ids)
        for subscription in subscriptions:
            related_id = getattr(subscription, f"{name}_id")
            if related_id is not None:
                setattr(subscription, name, objects[related_id])


@retry_on_conflict
def renewals_cycle(*, ids: list[UUID], now: datetime | None = None, collect: bool = True) -> CycleResult:
    """Cycle these claimed subscriptions in one transaction; payments are enqueued after commit."""
    now = now or clock.now()
    result = CycleResult()
    with transaction.atomic():
        subscriptions = lock_many(
            Subscription.objects.filter(status__in=RENEWING, current_period_end__lte=now), ids
        )
        _attach_related(subscriptions)
        pending: dict[UUID, list[BillingEntry]] = defaultdict(list)
        for entry in BillingEntry.objects.filter(
            subscription_id__in=[s.pk for s in subscriptions], order__isnull=True
        ):
            pending[entry.subscription_id].append(entry)
        drafts = []
        by_outcome = defaultdict(list)
        for subscription in subscriptions:
            outcome, draft = _cycle_one(subscription, pending.get(subscription.pk, []), now)
            setattr(result, outcome, getattr(result, outcome) + 1)
            by_outcome[outcome].append(subscription)
            if draft is not None:
                drafts.append(draft)
        result.orders = _save(drafts, subscriptions, now)
        for outcome, cycled in by_outcome.items():
            subscriptions_events_record_bulk(type=OUTCOME_EVENTS[outcome], subscriptions=cycled)
        # Claimed rows that were no longer due (cycled elsewhere) are released too.
        Subscription.objects.filter(pk__in=ids, renewal_claimed_at__isnull=False).exclude(
            pk__in=[s.pk for s in subscriptions]
        ).update(renewal_claimed_at=None)
        order_ids = list(result.orders)
        if collect:
            # Robust: the orders were written with their first attempt due, so a broker
            # hiccup here (or a killed worker) only hands them to the collection sweep.
            transaction.on_commit(lambda: _enqueue_payments(order_ids), robust=True)
    return result


def _enqueue_payments(order_ids: list[UUID]) -> None:
    from billing.subscriptions.tasks import collect_order_payment

    crash_point("renewals.chunk_committed")
    for n, order_id in enumerate(order_ids):
        if n == len(order_ids) // 2:
            crash_point("renewals.enqueue_payments_midway")
        collect_order_payment.delay(str(order_id))


def renewals_run(
    *, now: datetime | None = None, limit: int | None = None, chunk: int = CHUNK, collect: bool = True
) -> CycleResult:
    """Claim and cycle due subscriptions chunk by chunk until none are left (or ``limit``)."""
    now = now or clock.now()
    total = CycleResult()
    while limit is None or total.cycled + total.ended + total.paused < limit:
        ids = renewals_claim(now=now, limit=chunk)
        if not ids:
            break
        try:
            result = renewals_cycle(ids=ids, now=now, collect=collect)
        except Exception:
            # Give the chunk back at once (a killed worker's claims expire after CLAIM_TTL instead).
            Subscription.objects.filter(pk__in=ids).update(renewal_claimed_at=None)
            raise
        total.cycled += result.cycled
        total.ended += result.ended
        total.paused += result.paused
        total.orders += result.orders
    return total
