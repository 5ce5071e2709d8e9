"""Settle from the processor when webhooks are lost: the payment sweeper.

A Stripe attempt still ``pending``, ``requires_action`` or ``processing`` some minutes after
it was created (``settle_after()``) is asked about at the processor, and the answer goes
through ``payment_apply_snapshot`` like any webhook, so 3-D Secure completions, timed-out
calls and killed workers settle without webhooks:

* the PaymentIntent id is known: retrieve it;
* it is not (the worker died before or during the create call, or the call timed out): look
  the intent up by our metadata (``recur_payment_id``); if it exists, apply it;
* the processor proves there is none: send the create now with the attempt's own
  idempotency key. Why not abandon the attempt and let the order open a new one? A create
  that was still on its way (a stalled worker) would then charge under the old key while
  the new attempt charges under a new one: twice. With the same key Stripe answers both
  with one PaymentIntent; and the proof of absence (a strongly consistent list) covers
  localstripe, which ignores idempotency keys. The send is claimed by a conditional UPDATE
  of ``submitted_at``, so a redelivered task and the sweeper never both send it.

Each payment is leased by moving ``settle_check_at`` ahead before the processor is asked
(concurrent sweepers skip it; a crash only delays it); the wait grows with the payment's age,
so an intent waiting days for its customer costs a few calls a day. Manual payments are left
alone: an operator records them.
"""

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Q

from billing.payments import services
from billing.payments.models import Payment
from billing.payments.processor import LOOKUP_INCONCLUSIVE, ChargeOutcome, PaymentProcessor, ProcessorError
from core import clock

logger = logging.getLogger("recur.payments")

IN_FLIGHT = (Payment.Status.PENDING, Payment.Status.REQUIRES_ACTION, Payment.Status.PROCESSING)
MAX_RECHECK = timedelta(hours=6)


def settle_after() -> timedelta:
    """How long an attempt may stay in flight before the processor is asked about it
    (``RECUR_PAYMENT_SETTLE_AFTER_MINUTES``). Invariant checks count payments older than this
    plus one sweep as overdue."""
    return timedelta(minutes=settings.RECUR_PAYMENT_SETTLE_AFTER_MINUTES)


def payments_unsettled(*, older_than: timedelta | None = None):
    """Stripe attempts still in flight that were created more than ``older_than`` ago."""
    cutoff = clock.now() - (settle_after() if older_than is None else older_than)
    return Payment.objects.filter(
        status__in=IN_FLIGHT, processor=Payment.Processor.STRIPE, created_at__lte=cutoff
    )


@dataclass
class SettleResult:
    checked: int = 0
    settled: int = 0  # left the in-flight states
    resubmitted: int = 0  # provably never reached the processor: sent now, same key
    errors: int = 0


def _next_check(payment: Payment, now, older_than: timedelta):
    age = now - payment.created_at
    return now + min(max(older_than, age / 2), MAX_RECHECK)


def payments_settle_stale(*, older_than: timedelta | None = None, limit: int = 100) -> SettleResult:
    """Ask the processor about overdue in-flight Stripe attempts and apply its answers."""
    older_than = settle_after() if older_than is None else older_than
    now = clock.now()
    result = SettleResult()
    due = (
        payments_unsettled(older_than=older_than)
        .filter(Q(settle_check_at__isnull=True) | Q(settle_check_at__lte=now))
        .order_by("created_at")[:limit]
    )
    for payment in list(due):
        lease = Q(settle_check_at__isnull=True) | Q(settle_check_at__lte=now)
        leased = Payment.objects.filter(lease, pk=payment.pk, status__in=IN_FLIGHT).update(
            settle_check_at=_next_check(payment, now, older_than)
        )
        if not leased:
            continue  # another sweeper has it, or it settled meanwhile
        result.checked += 1
        try:
            settled, resubmitted = payment_settle_from_processor(payment=payment)
        except ProcessorError as exc:
            result.errors += 1
            logger.warning("could not settle payment %s from the processor: %s", payment.pk, exc)
            Payment.objects.filter(pk=payment.pk).update(note=f"settlement: {exc}"[:500])
            continue
        except Exception:  # one bad row must not stop the sweep; its lease brings it back later
            result.errors += 1
            logger.exception("settling payment %s failed", payment.pk)
            continue
        result.resubmitted += resubmitted
        result.settled += settled.status not in IN_FLIGHT
    return result


def payment_settle_from_processor(
    *, payment: Payment, processor: PaymentProcessor | None = None
) -> tuple[Payment, bool]:
    """(payment after the processor's answer, whether the create had to be sent now).
    Outside any transaction: it calls the processor. Raises ``ProcessorError``."""
    payment.refresh_from_db()
    if payment.status not in IN_FLIGHT or payment.processor != Payment.Processor.STRIPE:
        return payment, False
    processor = processor or services.processor_for(payment.organization)
    if payment.processor_payment_id:
        outcome = processor.payment_intent_retrieve(payment_intent_id=payment.processor_payment_id)
        return services.payment_apply_outcome(payment=payment, outcome=outcome), False
    outcome = _find(payment, processor)
    if outcome is not None:
        return services.payment_apply_outcome(payment=payment, outcome=outcome), False
    if payment.status != Payment.Status.PENDING or not services.payment_submission_claim(payment=payment):
        return Payment.objects.get(pk=payment.pk), False
    logger.info("payment %s never reached the processor: sending it now", payment.pk)
    return services.payment_submit(payment=payment, processor=processor), True


def _find(payment: Payment, processor: PaymentProcessor) -> ChargeOutcome | None:
    """The intent our metadata names, or None when the processor proves there is none."""
    customer = payment.customer
    if customer is not None and not customer.stripe_customer_id:
        # The customer is synced (and its id saved) before any create is sent: none was.
        return None
    outcome = processor.payment_intent_find(
        recur_payment_id=str(payment.pk),
        processor_customer_id=customer.stripe_customer_id if customer is not None else None,
        created_after=payment.created_at,
    )
    if outcome is not None and (outcome.raw.get("metadata") or {}).get("recur_payment_id") not in (
        None,
        str(payment.pk),
    ):
        raise ProcessorError("the processor answered with another payment's intent", code=LOOKUP_INCONCLUSIVE)
    return outcome
