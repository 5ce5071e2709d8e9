"""Collecting orders, and dunning when a payment fails.

An order that owes money is written with its first automatic attempt due; the collection
sweeps and the prompt path (a task enqueued after commit) start attempts under the order's
row lock. A failed automatic attempt schedules retries from the organization's dunning
schedule (days after the first failure: +2, +5, +7, +7 by default); a non-recoverable
decline jumps to the final deadline. Retries by the customer or an operator do not use up
automatic attempts. When the last attempt fails, collection stops (``order.dunning_exhausted``;
with the organization's final action "cancel" the order is voided).

Orders never reach up into what they bill for: a subscription learns from the events
recorded here (``order.paid``, ``order.updated`` after a failure, ``order.dunning_exhausted``)
and reacts in its own consumers (``billing.subscriptions.consumers``)."""

import logging
from datetime import timedelta
from uuid import UUID

from django.db import transaction

from billing.orders.locks import order_lock
from billing.orders.models import BillingReason, Order
from billing.orders.selectors import PAYMENT_IN_FLIGHT, orders_due_for_attempt, payment_order_id
from billing.orders.services import order_event_record, order_mark_paid
from billing.payments import services as payments
from billing.payments.models import Payment
from core import clock
from core.audit import audit_record, customer_actor
from core.errors import Conflict
from core.retry import retry_on_conflict

logger = logging.getLogger("recur.dunning")

# Decline codes that no retry will fix: go straight to the final attempt.
HARD_DECLINES = frozenset(
    {
        "stolen_card", "lost_card", "pickup_card", "restricted_card", "fraudulent", "merchant_blacklist",
        "invalid_account", "card_not_supported", "currency_not_supported", "new_account_information_available",
        "no_payment_method", "expired_card",
    }
)  # fmt: skip
# Off-session charges Recur starts itself; their failures are dunned.
AUTOMATIC = (Payment.Trigger.CYCLE, Payment.Trigger.SUBSCRIPTION_CHANGE, Payment.Trigger.DUNNING_RETRY)
IN_FLIGHT = PAYMENT_IN_FLIGHT
# While an automatic attempt starts, the order's next attempt is pushed this far ahead (in the
# transaction that commits the attempt), so two collectors never both start one; an attempt
# that ends without moving the order on (neither paid nor dunned) is picked up again when the
# lease runs out.
COLLECTION_LEASE = timedelta(minutes=10)


@retry_on_conflict
@transaction.atomic
def _payment_for(order_id: UUID, trigger: str) -> tuple[Payment | None, bool]:
    """The attempt to collect now and whether it is new. An attempt already in flight is
    reused, never doubled; an automatic attempt starts only if the order's next attempt is due
    (a concurrent collector that got there first has leased it)."""
    order = order_lock(order_id, related=("customer", "organization"))
    if order.status != Order.Status.PENDING or order.due <= 0 or order.payment_hold:
        return None, False  # a held order waits for an operator: charging again could take the money twice
    in_flight = (
        Payment.objects.filter(reference=order.reference, status__in=IN_FLIGHT).order_by("-attempt").first()
    )
    if in_flight is not None:
        return in_flight, False
    if trigger in AUTOMATIC:
        now = clock.now()
        if order.next_payment_attempt_at is None or order.next_payment_attempt_at > now:
            return None, False
        order.next_payment_attempt_at = now + COLLECTION_LEASE
        order.save(update_fields=["next_payment_attempt_at", "updated_at"])
    payment = payments.payment_create(
        organization=order.organization,
        customer=order.customer,
        reference=order.reference,
        amount=order.due,
        currency=order.currency,
        trigger=trigger,
        off_session=trigger != Payment.Trigger.CUSTOMER_RETRY,
        payment_method_id=order.customer.default_payment_method_id,
    )
    return payment, True


def order_payment_collect(*, order_id: UUID, trigger: str = Payment.Trigger.CYCLE) -> Payment | None:
    """Charge a pending order now. Idempotent: a paid order is left alone, and an attempt in
    flight is returned as it is (its own collector, the processor's webhook or the stale-payment
    sweep settles it; calling the processor again here could charge twice)."""
    payment, created = _payment_for(order_id, trigger)
    if payment is None or not created:
        return payment
    return _confirm_new(payment)


def _confirm_new(payment: Payment) -> Payment:
    """Send a new attempt to the processor (outside any transaction)."""
    if not payment.payment_method_id:
        return payments.payment_apply_snapshot(
            payment=payment,
            status=Payment.Status.FAILED,
            observed_at=clock.now(),
            facts={"decline_code": "no_payment_method", "decline_message": "No payment method on file."},
        )
    return payments.payment_confirm(payment=payment)


def order_payment_retry(*, order: Order, actor=None, by_customer: bool = False) -> Payment | None:
    """Retry an unpaid order now, on the customer's or an operator's request; dunning attempts are kept."""
    if order.status != Order.Status.PENDING or order.due <= 0:
        raise Conflict("Only an unpaid order can be retried.", code="order_not_payable")
    if order.payment_hold:
        raise Conflict(
            "A payment for this order is held for review; release the hold first.", code="order_payment_held"
        )
    trigger = Payment.Trigger.CUSTOMER_RETRY if by_customer else Payment.Trigger.OPERATOR_RETRY
    if actor is not None or by_customer:
        audit_record(
            actor=actor if actor is not None else customer_actor(order.customer),
            action="order.retry_payment",
            target=order,
            organization=order.organization,
            data={"subscription_id": str(order.subscription_id) if order.subscription_id else None},
        )
    return order_payment_collect(order_id=order.pk, trigger=trigger)


# --- payment hooks (inside the payment's transaction; PAYMENT_HOOKS["order"]) ----------------


def _order_of(payment: Payment) -> Order | None:
    if not payment.reference.startswith("order:") or (order_id := payment_order_id(payment)) is None:
        return None
    return order_lock(order_id, related=("organization",))  # after its subscription (order_payment_lock)


def order_payment_succeeded(payment: Payment) -> None:
    order = _order_of(payment)
    if order is not None:
        order_mark_paid(order=order)  # even a voided order: the money was taken


def order_payment_held(payment: Payment) -> None:
    """The processor took another amount or currency than this order's: stop collecting and
    flag the order for an operator (see ``order_payment_hold_release``)."""
    order = _order_of(payment)
    if order is None:
        return
    order.payment_hold = payment.hold_reason
    order.next_payment_attempt_at = None
    order.save(update_fields=["payment_hold", "next_payment_attempt_at", "updated_at"])
    order_event_record(type="order.updated", order=order)


def order_payment_failed(payment: Payment) -> None:
    order = _order_of(payment)
    if order is None or order.status != Order.Status.PENDING:
        return
    if Payment.objects.filter(reference=payment.reference, attempt__gt=payment.attempt).exists():
        return  # a newer attempt decides
    if payment.trigger not in AUTOMATIC:
        order.save(update_fields=["updated_at"])
        order_event_record(type="order.updated", order=order)
        return  # customer and operator retries leave the schedule as it is
    now = clock.now()
    schedule = order.organization.dunning_schedule
    if order.dunning_deadline is None:  # the first failure of this order starts the schedule
        order.dunning_deadline = now + timedelta(days=sum(schedule))
    else:
        order.dunning_attempts += 1
    hard = payment.decline_code in HARD_DECLINES
    exhausted = order.dunning_attempts >= len(schedule) or (hard and now >= order.dunning_deadline)
    if exhausted:
        order.next_payment_attempt_at = None
        if order.subscription_id and order.organization.dunning_final_action != "unpaid":
            order.status = Order.Status.VOID  # the subscription is canceled: nothing is owed any more
    elif hard:
        order.next_payment_attempt_at = order.dunning_deadline
        order.dunning_attempts = len(schedule) - 1  # the deadline's attempt is the last
    else:
        order.next_payment_attempt_at = now + timedelta(days=schedule[order.dunning_attempts])
    order.save()
    order_event_record(type="order.updated", order=order)
    if exhausted:
        order_event_record(type="order.dunning_exhausted", order=order)


# --- the collection jobs ---------------------------------------------------------------------


def first_attempt_trigger(billing_reason: str) -> str:
    """What starts an order's first automatic attempt: a plan change's invoice or a renewal."""
    if billing_reason == BillingReason.SUBSCRIPTION_UPDATE:
        return Payment.Trigger.SUBSCRIPTION_CHANGE
    return Payment.Trigger.CYCLE


def orders_collect_due(*, first_attempts_only: bool = False, limit: int = 500) -> int:
    """Start an automatic attempt for every order whose next attempt is due and that has none in
    flight: a first attempt (``cycle``, or ``subscription_change`` for a change's invoice) for an
    order that never failed, a ``dunning_retry`` otherwise. Returns how many attempts started.
    Safe beside the enqueued first-attempt tasks and other sweeps: each order is leased under
    its row lock (``_payment_for``)."""
    due = orders_due_for_attempt(now=clock.now())
    if first_attempts_only:
        due = due.filter(dunning_deadline__isnull=True)
    rows = due.order_by("next_payment_attempt_at").values_list("pk", "dunning_deadline", "billing_reason")
    started = 0
    for order_id, deadline, reason in list(rows[:limit]):
        trigger = first_attempt_trigger(reason) if deadline is None else Payment.Trigger.DUNNING_RETRY
        payment, created = _payment_for(order_id, trigger)
        if not created:
            continue
        started += 1
        try:
            _confirm_new(payment)
        except Exception:  # one order's surprise must not strand the rest of the sweep
            logger.exception("collecting %s failed; its payment is left to the stale-payment sweep", order_id)
    return started


def order_collections_sweep(*, limit: int = 200) -> int:
    """Every minute: first attempts whose task was lost (a killed worker, a broker hiccup), so a
    new order never waits for the hourly dunning job. Retries keep the dunning job's cadence."""
    return orders_collect_due(first_attempts_only=True, limit=limit)


def dunning_run(*, limit: int = 500) -> int:
    """Every hour: retry orders whose next attempt is due (and any first attempt still waiting)."""
    return orders_collect_due(limit=limit)


def orders_retry_for_customer(*, customer_id) -> int:
    """A customer's new default payment method: retry their failed orders now (after commit)."""
    retried = Order.objects.filter(
        customer_id=customer_id, status=Order.Status.PENDING, next_payment_attempt_at__isnull=False
    ).update(next_payment_attempt_at=clock.now())
    if retried:
        from billing.orders.tasks import run_dunning  # tasks import this module

        transaction.on_commit(run_dunning.delay)
    return retried
