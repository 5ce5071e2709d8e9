"""Pending refunds settle from the processor when no answer or webhook arrives.

``refunds_settle_pending`` (a beat job, every minute) takes refunds still pending at Recur
``REFUND_SETTLE_AFTER`` after they were created (and last tried) and asks the processor:

- known processor id: retrieve the refund and apply it (``refund_report_apply``, the path of
  every refund report);
- no processor id (the call timed out, or the worker died around it): look the refund up by
  the id in its metadata; found, it is applied like any report; provably absent, it is sent
  again with the same idempotency key. Never sent blind: localstripe ignores idempotency
  keys, and a refund the processor made but whose answer was lost must not be made twice.

Each refund is claimed by a conditional update of ``submitted_at``, so overlapping sweeps
ask about it once; an unreachable processor leaves it for the next sweep.
"""

import logging
from dataclasses import replace
from datetime import timedelta

from django.db import transaction
from django.db.models import Q

from billing.payments.processor import ProcessorError
from billing.refunds import services
from billing.refunds.models import Refund
from billing.refunds.reports import ProcessorRefund, RefundReportRefused, refund_report_apply
from core import clock

logger = logging.getLogger("recur.refunds")

S = Refund.Status
# A pending refund this old (since created and since last tried) is settled from the processor.
REFUND_SETTLE_AFTER = timedelta(minutes=2)
SWEEP_BATCH = 200


def refunds_pending_stale(*, older_than: timedelta = REFUND_SETTLE_AFTER):
    """Refunds whose card part is pending at Recur past ``older_than`` (ours to settle)."""
    cutoff = clock.now() - older_than
    return Refund.objects.filter(status=S.PENDING, card_amount__gt=0, created_at__lt=cutoff).filter(
        Q(submitted_at__isnull=True) | Q(submitted_at__lt=cutoff)
    )


def _claim(refund: Refund, cutoff) -> bool:
    claimed = (
        Refund.objects.filter(pk=refund.pk, status=S.PENDING)
        .filter(Q(submitted_at__isnull=True) | Q(submitted_at__lt=cutoff))
        .update(submitted_at=clock.now())
    )
    return claimed == 1


def refund_settle_from_processor(*, refund: Refund) -> Refund:
    """Ask the processor what became of a pending refund and apply its answer. Outside any
    transaction (it calls the processor)."""
    if transaction.get_connection().in_atomic_block:
        raise RuntimeError("refund_settle_from_processor calls the processor; call it outside transactions")
    refund = Refund.objects.select_related("organization", "payment").get(pk=refund.pk)
    payment = refund.payment
    if refund.status != S.PENDING or payment is None or not payment.processor_payment_id:
        return services.refund_submit(refund=refund)  # fails it when there is nothing to refund
    processor = services._processor(refund, payment)
    if refund.processor_refund_id:
        outcome = processor.refund_retrieve(refund_id=refund.processor_refund_id)
    else:
        outcome = processor.refund_find(
            payment_intent_id=payment.processor_payment_id, metadata={"recur_refund_id": str(refund.pk)}
        )
        if outcome is None:  # provably never made: send it now, same idempotency key
            return services.refund_submit(refund=refund)
    report = ProcessorRefund.from_outcome(outcome)
    if not report.currency:
        report = replace(report, currency=payment.currency)
    refund_report_apply(report=report, observed_at=clock.now(), payment=payment)
    return Refund.objects.get(pk=refund.pk)


def refunds_settle_pending(*, older_than: timedelta = REFUND_SETTLE_AFTER, limit: int = SWEEP_BATCH) -> int:
    """Settle stale pending refunds from the processor (see the module docstring). Returns how
    many were claimed."""
    cutoff = clock.now() - older_than
    stale = list(refunds_pending_stale(older_than=older_than).order_by("created_at")[:limit])
    claimed = 0
    for refund in stale:
        if not _claim(refund, cutoff):
            continue  # another sweep has it
        claimed += 1
        try:
            refund_settle_from_processor(refund=refund)
        except ProcessorError as exc:
            logger.warning("cannot settle %s from the processor yet: %s", refund.idempotency_key, exc)
        except RefundReportRefused as exc:
            logger.error(
                "the processor's answer about %s was refused: %s", refund.idempotency_key, exc.detail
            )
        except Exception:  # one bad refund must not stop the others
            logger.exception("settling %s failed", refund.idempotency_key)
    return claimed
