"""Collecting subscription orders, and dunning when a payment fails.

A failed renewal makes the subscription ``past_due`` and schedules retries from the
organization's dunning schedule (days after the first failure: +2, +5, +7, +7 by default).
A non-recoverable decline jumps to the final deadline. Retries by the customer or an
operator do not use up automatic attempts. When the last attempt fails the subscription is
canceled or marked unpaid (organization setting), and benefits go after the grace period.
"""

import logging
from datetime import timedelta
from uuid import UUID

from django.db import transaction

from billing.ledger.services import ledger_post_order_paid
from billing.orders.locks import order_lock
from billing.orders.models import Order
from billing.orders.services import invoice_number_assign
from billing.payments import services as payments
from billing.payments.models import Payment
from billing.subscriptions.locks import subscription_lock
from billing.subscriptions.models import Subscription
from core import clock
from core.locks import lock_one
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
AUTOMATIC = (Payment.Trigger.CYCLE, Payment.Trigger.DUNNING_RETRY)
IN_FLIGHT = (Payment.Status.PENDING, Payment.Status.PROCESSING, Payment.Status.REQUIRES_ACTION)
DUNNING_LEASE = timedelta(hours=1)


@retry_on_conflict
@transaction.atomic
def _payment_for(order_id: UUID, trigger: str) -> Payment | None:
    """The attempt to collect now: an attempt already in flight is reused, never doubled."""
    order = order_lock(order_id, related=("customer", "organization"))
    if order.status != Order.Status.PENDING or order.due <= 0:
        return None
    in_flight = (
        Payment.objects.filter(reference=order.reference, status__in=IN_FLIGHT).order_by("-attempt").first()
    )
    if in_flight is not None:
        return in_flight
    return payments.payment_create(
        organization=order.organization,
        customer=order.customer,
        reference=order.reference,
        amount=order.due,
        currency=order.currency,
        trigger=trigger,
        off_session=trigger != Payment.Trigger.CUSTOMER_RETRY,
        payment_method_id=order.customer.default_payment_method_id,
    )


def order_payment_collect(*, order_id: UUID, trigger: str = Payment.Trigger.CYCLE) -> Payment | None:
    """Charge a pending order now. Idempotent: a paid order or an attempt in flight is left alone."""
    payment = _payment_for(order_id, trigger)
    if payment is None or payment.status != Payment.Status.PENDING:
        return payment
    if not payment.payment_method_id:
        return payments.payment_apply_snapshot(
            payment=payment,
            status=Payment.Status.FAILED,
            observed_at=clock.now(),
            facts={"decline_code": "no_payment_method", "decline_message": "No payment method on file."},
        )
    return payments.payment_confirm(payment=payment)


# --- payment hooks (inside the payment's transaction) ----------------------------------------


def _order_of(payment: Payment) -> Order | None:
    order_id = payments.reference_id(payment, "order")
    if order_id is None:
        return None
    return order_lock(order_id, related=("subscription", "organization"))  # after its subscription


def order_payment_succeeded(payment: Payment) -> None:
    order = _order_of(payment)
    if order is None or order.status == Order.Status.PAID:
        return
    now = clock.now()
    order.status = Order.Status.PAID  # even a voided order: the money was taken
    order.paid_at = now
    order.invoice_number = order.invoice_number or invoice_number_assign(organization=order.organization)
    order.next_payment_attempt_at = None
    order.save()
    ledger_post_order_paid(order=order)
    subscription = order.subscription
    if subscription is not None:
        subscription = subscription_lock(subscription.pk, related=())
        if subscription.status in (Subscription.Status.PAST_DUE, Subscription.Status.UNPAID):
            subscription.status = Subscription.Status.ACTIVE
            subscription.past_due_at = None
            subscription.save(update_fields=["status", "past_due_at", "updated_at"])


def order_payment_failed(payment: Payment) -> None:
    order = _order_of(payment)
    if order is None or order.status != Order.Status.PENDING:
        return
    if Payment.objects.filter(reference=payment.reference, attempt__gt=payment.attempt).exists():
        return  # a newer attempt decides
    now = clock.now()
    subscription = (
        subscription_lock(order.subscription_id, related=("organization",)) if order.subscription_id else None
    )
    if subscription is not None and subscription.status in (
        Subscription.Status.ACTIVE,
        Subscription.Status.TRIALING,
    ):
        subscription.status = Subscription.Status.PAST_DUE
        subscription.past_due_at = now
        subscription.save(update_fields=["status", "past_due_at", "updated_at"])
    if payment.trigger not in AUTOMATIC:
        order.save(update_fields=["updated_at"])
        return  # customer and operator retries leave the schedule as it is
    schedule = order.organization.dunning_schedule
    if order.dunning_deadline is None:  # the first failure of this order starts the schedule
        order.dunning_deadline = now + timedelta(days=sum(schedule))
    else:
        order.dunning_attempts += 1
    hard = payment.decline_code in HARD_DECLINES
    if order.dunning_attempts >= len(schedule) or (hard and now >= order.dunning_deadline):
        _dunning_exhausted(order, subscription, now)
    elif hard:
        order.next_payment_attempt_at = order.dunning_deadline
        order.dunning_attempts = len(schedule) - 1  # the deadline's attempt is the last
    else:
        order.next_payment_attempt_at = now + timedelta(days=schedule[order.dunning_attempts])
    order.save()


def _dunning_exhausted(order: Order, subscription: Subscription | None, now) -> None:
    order.next_payment_attempt_at = None
    if subscription is None:
        return
    if order.organization.dunning_final_action == "unpaid":
        subscription.status = Subscription.Status.UNPAID
    else:
        subscription.status = Subscription.Status.CANCELED
        subscription.canceled_at = subscription.canceled_at or now
        subscription.ended_at = now
        subscription.cancellation_reason = subscription.cancellation_reason or "payment_failed"
        order.status = Order.Status.VOID
    subscription.benefits_revoke_at = now + timedelta(days=order.organization.benefit_grace_days)
    subscription.save()


# --- the dunning job -------------------------------------------------------------------------


def dunning_run(*, limit: int = 500) -> int:
    """Retry orders whose next attempt is due. Each order is leased by moving its next attempt
    an hour ahead, so a crashed retry is retried, and a retry in flight is never doubled."""
    now = clock.now()
    due = list(
        Order.objects.filter(status=Order.Status.PENDING, next_payment_attempt_at__lte=now)
        .order_by("next_payment_attempt_at")
        .values_list("pk", "next_payment_attempt_at")[:limit]
    )
    leased = []
    for order_id, when in due:
        if Order.objects.filter(pk=order_id, next_payment_attempt_at=when).update(
            next_payment_attempt_at=now + DUNNING_LEASE
        ):
            leased.append(order_id)
    for order_id in leased:
        order_payment_collect(order_id=order_id, trigger=Payment.Trigger.DUNNING_RETRY)
    return len(leased)


def customer_payment_method_updated(*, customer_id) -> int:
    """A new default payment method: retry the customer's failed renewals now (after commit)."""
    now = clock.now()
    retried = Order.objects.filter(
        customer_id=customer_id, status=Order.Status.PENDING, next_payment_attempt_at__isnull=False
    ).update(next_payment_attempt_at=now)
    if retried:
        from billing.subscriptions.tasks import run_dunning

        transaction.on_commit(run_dunning.delay)
    return retried


# --- benefits after the grace period ---------------------------------------------------------

# Called with subscription= inside a transaction when an ended subscription's grace period is
# over (the benefits feature registers its revocation here). Hooks must be idempotent.
BENEFIT_REVOCATION_HOOKS: list = []


def benefits_revoke_due(*, limit: int = 500) -> int:
    """Fire the revocation hooks for subscriptions whose grace period ended, once each."""
    now = clock.now()
    done = 0
    due = Subscription.objects.filter(benefits_revoke_at__lte=now).values_list("pk", flat=True)[:limit]
    for subscription_id in list(due):
        with transaction.atomic():
            subscription = lock_one(
                Subscription.objects.filter(benefits_revoke_at__lte=now), subscription_id, skip_locked=True
            )
            if subscription is None:
                continue
            for hook in BENEFIT_REVOCATION_HOOKS:
                hook(subscription=subscription)
            subscription.benefits_revoke_at = None
            subscription.save(update_fields=["benefits_revoke_at", "updated_at"])
            done += 1
    return done
