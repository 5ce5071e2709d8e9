"""Invariants watched continuously: what must hold at every instant, checked every 10 minutes.

Each invariant is one set-based query returning the rows that break it (an exact count
and a few example ids); ``invariants_run`` runs them all and stores an ``InvariantRun``
(the dashboard card and ``manage.py ledger_reconcile`` show it). Each has a grace period,
so work that is merely in flight (an order written a minute ago whose first attempt is
being enqueued, a claim younger than its TTL) is not reported.

The rules belong to the apps that own the concepts; until they publish their own
definitions, each check's query is written here, one small function per rule, so that it
can be swapped for the owner's selector without touching the rest. This module sits with
reconciliation (above orders, subscriptions, payments and refunds), so it may read them
all; apps above it add checks with ``@invariant(...)``.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Count, Q, QuerySet, Window
from django.db.models.expressions import RawSQL

from billing.ledger.models import InvariantRun, ReconciliationRun
from billing.orders import selectors as order_selectors
from billing.orders.models import Order
from billing.payments.models import Payment
from billing.refunds import selectors as refund_selectors
from billing.refunds.models import Refund
from billing.subscriptions.models import Subscription
from billing.subscriptions.renewals import CLAIM_TTL, RENEWING
from core import clock

logger = logging.getLogger("recur.invariants")

EXAMPLES = 5  # ids kept per failing check; the count is always exact
RUN_EVERY = timedelta(minutes=10)
KEEP_PASSING_RUNS = timedelta(days=30)  # failing runs are kept for good

IN_FLIGHT = order_selectors.PAYMENT_IN_FLIGHT
LIVE_REFUNDS = (Refund.Status.PENDING, Refund.Status.SUCCEEDED)  # what the processor counts as refunded

# Grace periods: how long a state may look wrong because the work is still on its way.
# A new order's first attempt is enqueued on commit (or, later, by a per-minute sweep).
FIRST_ATTEMPT_GRACE = timedelta(minutes=10)
# Dunning runs hourly and leases each order an hour ahead, so an attempt time may be passed
# by up to two hours while the job is healthy.
SCHEDULED_ATTEMPT_OVERDUE = timedelta(hours=2)
# How long an attempt may stay in flight before it counts as lost. Pending and processing
# settle within seconds at Stripe, or through the stale-payment sweep; a customer may take
# until the checkout expires (24 h) to complete an authentication.
PAYMENT_SETTLE_TIMEOUT = {
    Payment.Status.PENDING: timedelta(hours=1),
    Payment.Status.PROCESSING: timedelta(hours=1),
    Payment.Status.REQUIRES_ACTION: timedelta(hours=25),
}
# A claim older than CLAIM_TTL is taken again by the next per-minute dispatch.
CLAIM_GRACE = timedelta(minutes=2)
# A period that ended is claimed within a minute, or after CLAIM_TTL if a worker died.
RENEWAL_GRACE = CLAIM_TTL + timedelta(minutes=10)
# Refund events and the charge's refunded amount arrive separately, in any order.
REFUND_EVENTS_GRACE = timedelta(minutes=15)
# The full reconciliation runs daily; a run older than this means the job stopped.
RECONCILIATION_MAX_AGE = timedelta(hours=26)


@dataclass(frozen=True)
class Offenders:
    """What a check found: the exact number of offending rows and a few of their ids."""

    count: int
    examples: list[str] = field(default_factory=list)
    note: str = ""


@dataclass(frozen=True)
class Invariant:
    name: str
    title: str  # the rule, as it holds: "Every due order has a payment attempt scheduled"
    model: str  # "<app_label>.<model_name>" of the example ids, for backoffice links
    grace: timedelta | None
    find: Callable[[datetime], "QuerySet | Offenders"]


INVARIANTS: dict[str, Invariant] = {}


def invariant(name: str, *, title: str, model: str, grace: timedelta | None = None):
    """Register ``find(now) -> QuerySet | Offenders`` (a queryset of the offending rows)."""

    def decorator(find):
        INVARIANTS[name] = Invariant(name=name, title=title, model=model, grace=grace, find=find)
        return find

    return decorator


def offenders_of(queryset: QuerySet) -> Offenders:
    """Count and a few ids in one query (the window count is taken before the LIMIT)."""
    rows = list(
        queryset.order_by()
        .annotate(_offending=Window(Count("pk")))
        .order_by("pk")
        .values_list("pk", "_offending")[:EXAMPLES]
    )
    return Offenders(count=rows[0][1] if rows else 0, examples=[str(pk) for pk, _ in rows])


# --- the rules --------------------------------------------------------------------------------


def orders_due_unscheduled(now: datetime) -> QuerySet:
    """Pending orders with money due that nothing will ever charge (the orders app's rule), or
    whose scheduled attempt is long overdue (the collection sweeps are not running)."""
    unscheduled = order_selectors.orders_due_unscheduled()
    overdue = order_selectors.orders_awaiting_payment().filter(
        next_payment_attempt_at__lt=now - SCHEDULED_ATTEMPT_OVERDUE
    )
    return (
        Order.objects.filter(created_at__lt=now - FIRST_ATTEMPT_GRACE)
        .filter(Q(pk__in=unscheduled.values("pk")) | Q(pk__in=overdue.values("pk")))
        .exclude(order_selectors.attempt_in_flight())
    )


def payments_unsettled_past_timeout(now: datetime) -> QuerySet:
    """Attempts still in flight long after they should have settled."""
    late = Q()
    for status, timeout in PAYMENT_SETTLE_TIMEOUT.items():
        late |= Q(status=status, created_at__lt=now - timeout)
    return Payment.objects.filter(status__in=IN_FLIGHT).filter(late)


def renewal_claims_stale(now: datetime) -> QuerySet:
    """Renewal claims a dead worker left that no dispatcher took back."""
    return Subscription.objects.filter(
        renewal_claimed_at__lt=now - CLAIM_TTL - CLAIM_GRACE, status__in=RENEWING
    )


def subscriptions_renewal_overdue(now: datetime) -> QuerySet:
    """Renewing subscriptions whose period ended without being renewed."""
    return Subscription.objects.filter(status__in=RENEWING, current_period_end__lt=now - RENEWAL_GRACE)


def payments_refund_mismatch(now: datetime) -> QuerySet:
    """Payments whose refunded amounts disagree with their pending and succeeded Refund rows:
    the processor's cumulative figure (the refunds app's rule) or Recur's own recount.
    Only payments with something refunded on either side are read (partial index on
    ``amount_refunded > 0``; refunds grouped by payment)."""
    settled = now - REFUND_EVENTS_GRACE
    processor = refund_selectors.payments_refund_mismatch().filter(updated_at__lt=settled)
    return Payment.objects.filter(Q(pk__in=processor.values("pk")) | Q(pk__in=_recount_mismatch(now)))


def _recount_mismatch(now: datetime) -> RawSQL:
    payments, refunds = Payment._meta.db_table, Refund._meta.db_table
    return RawSQL(
        f"""
            WITH refunded AS (
                SELECT payment_id, SUM(card_amount) AS total, MAX(updated_at) AS changed_at
                  FROM {refunds}
                 WHERE payment_id IS NOT NULL AND status = ANY(%s) AND card_amount > 0
                 GROUP BY payment_id
            ), reported AS (
                SELECT id, amount_refunded, updated_at FROM {payments} WHERE amount_refunded > 0
            )
            SELECT COALESCE(reported.id, refunded.payment_id)
              FROM reported FULL JOIN refunded ON refunded.payment_id = reported.id
             WHERE COALESCE(reported.amount_refunded, 0) <> COALESCE(refunded.total, 0)
               AND GREATEST(reported.updated_at, refunded.changed_at) < %s
            """,
        [list(LIVE_REFUNDS), now - REFUND_EVENTS_GRACE],
    )


def ledger_unreconciled(now: datetime) -> Offenders:
    """The latest full reconciliation (daily, and ``manage.py ledger_reconcile``) found no
    discrepancy and is recent. Reconciliation sums whole tables, so this check reads its
    stored result rather than redoing it every few minutes."""
    run = ReconciliationRun.objects.order_by("-started_at", "-id").first()
    if run is None:
        return Offenders(count=1, note="never run: manage.py ledger_reconcile, or the daily job")
    when = f"run of {run.started_at:%Y-%m-%d %H:%M} UTC"
    if not run.ok:
        found = len(run.discrepancies)
        return Offenders(
            count=found,
            examples=[str(run.pk)],
            note=f"{when}: {found} discrepanc{'y' if found == 1 else 'ies'}",
        )
    if run.started_at < now - RECONCILIATION_MAX_AGE:
        return Offenders(count=1, examples=[str(run.pk)], note=f"last {when}: older than a day")
    return Offenders(count=0, note=when)


invariant(
    "order_due_without_attempt",
    title="Every order with money due has a payment attempt in flight or scheduled",
    model="orders.order",
    grace=FIRST_ATTEMPT_GRACE,
)(orders_due_unscheduled)
invariant(
    "payment_pending_past_timeout",
    title="No payment attempt stays in flight past its settle timeout",
    model="payments.payment",
    grace=PAYMENT_SETTLE_TIMEOUT[Payment.Status.PENDING],
)(payments_unsettled_past_timeout)
invariant(
    "renewal_claim_stale",
    title="No renewal claim outlives its TTL",
    model="subscriptions.subscription",
    grace=CLAIM_TTL + CLAIM_GRACE,
)(renewal_claims_stale)
invariant(
    "subscription_renewal_overdue",
    title="No subscription's period ended without a renewal",
    model="subscriptions.subscription",
    grace=RENEWAL_GRACE,
)(subscriptions_renewal_overdue)
invariant(
    "payment_refund_mismatch",
    title="Processor-refunded amounts equal the Refund rows",
    model="payments.payment",
    grace=REFUND_EVENTS_GRACE,
)(payments_refund_mismatch)
invariant(
    "ledger_reconciled",
    title="The ledger reconciles (latest daily reconciliation clean)",
    model="ledger.reconciliationrun",
    grace=RECONCILIATION_MAX_AGE,
)(ledger_unreconciled)


# --- running them -------------------------------------------------------------------------------


def _result(check: Invariant, now: datetime) -> dict:
    result = {"name": check.name, "title": check.title, "model": check.model, "note": "", "error": ""}
    try:
        with transaction.atomic():  # a failing query must not poison the other checks
            found = check.find(now)
            if not isinstance(found, Offenders):
                found = offenders_of(found)
    except Exception as exc:
        logger.exception("invariant %s could not be checked", check.name)
        return {**result, "ok": False, "count": 0, "examples": [], "error": f"{type(exc).__name__}: {exc}"}
    return {
        **result,
        "ok": found.count == 0,
        "count": found.count,
        "examples": found.examples,
        "note": found.note,
    }


def invariants_check(*, now: datetime | None = None, names: list[str] | None = None) -> list[dict]:
    """Every registered invariant's result at ``now`` (JSON-ready dicts), without storing them."""
    now = now or clock.now()
    checks = [INVARIANTS[name] for name in names] if names else list(INVARIANTS.values())
    return [_result(check, now) for check in checks]


def invariants_run(*, now: datetime | None = None) -> InvariantRun:
    """Check every invariant and store the run (the dashboard shows the latest)."""
    started = now or clock.now()
    results = invariants_check(now=started)
    run = InvariantRun.objects.create(
        started_at=started,
        finished_at=clock.now(),
        ok=all(result["ok"] for result in results),
        results=results,
    )
    for result in run.failing:
        logger.warning(
            "invariant %s fails: %s row(s), e.g. %s %s",
            result["name"], result["count"], result["examples"], result["note"] or result["error"],
        )  # fmt: skip
    return run


def invariant_runs_purge(*, now: datetime | None = None) -> int:
    """Passing runs older than a month go; failing ones stay as the record of what went wrong."""
    cutoff = (now or clock.now()) - KEEP_PASSING_RUNS
    deleted, _ = InvariantRun.objects.filter(ok=True, started_at__lt=cutoff).delete()
    return deleted


def last_invariant_run() -> InvariantRun | None:
    return InvariantRun.objects.order_by("-started_at", "-id").first()
