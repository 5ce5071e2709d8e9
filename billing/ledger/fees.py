"""Processor fees: what Stripe kept from a payment, read from its balance transaction and
posted to the ledger (``postings.ledger_post_processor_fee``: processor fees up, processor
cash down; the merchant's balance is untouched, the platform fee pays for it).

``payment_fee_record`` calls the processor, so it runs outside any transaction: it is
enqueued after commit when a Stripe payment succeeds (``payments.services``), and the
minute sweeper (``payment_fees_sweep``) retries every succeeded Stripe payment whose fee
is still unknown, so a lost message delays the fee but never loses it. The fee, the
balance transaction id and the net are stored on the payment in the transaction that
posts the fee, so a stored fee always has its posting.
"""

import logging
from datetime import timedelta

from django.db import transaction

from billing.ledger.models import LedgerTransaction
from billing.ledger.postings import ledger_post_processor_fee
from billing.payments.models import Payment
from billing.payments.processor import BalanceInfo, PaymentProcessor, ProcessorError
from core import clock
from core.locks import lock_one
from core.retry import retry_on_conflict

logger = logging.getLogger("recur.ledger")

SWEEP_BATCH = 200
SWEEP_AFTER = timedelta(minutes=1)


def _stripe_processor() -> PaymentProcessor:
    from billing.payments.stripe_processor import StripeProcessor

    return StripeProcessor()


def fee_pending_payments():
    """Succeeded Stripe payments with a charge whose fee is not read yet (partial index
    ``payment_fee_pending_idx``)."""
    return Payment.objects.filter(
        status=Payment.Status.SUCCEEDED, processor=Payment.Processor.STRIPE, fee__isnull=True
    ).exclude(processor_charge_id="")


@retry_on_conflict
@transaction.atomic
def _fee_store(*, payment: Payment, info: BalanceInfo) -> LedgerTransaction | None:
    payment = lock_one(Payment.objects.select_related("organization"), payment.pk)
    if payment.fee is None:  # else a concurrent run stored it first: post what it stored
        payment.fee, payment.net = info.fee, info.net
        fields = ["fee", "net", "updated_at"]
        if not payment.balance_transaction_id and info.id:
            payment.balance_transaction_id = info.id
            fields.append("balance_transaction_id")
        payment.save(update_fields=fields)
    currency = (info.currency or payment.currency).lower()
    return ledger_post_processor_fee(payment=payment, fee=payment.fee, currency=currency)


def payment_fee_record(
    *, payment: Payment, processor: PaymentProcessor | None = None
) -> LedgerTransaction | None:
    """Read the fee of a succeeded Stripe payment from its balance transaction, store it on
    the payment and post it. Idempotent: a payment whose fee is stored is posted (once, by
    key) without asking the processor again. Returns the posting, or None when there is
    nothing to post (not a succeeded Stripe charge, not settled yet, or a zero fee).
    Raises ``ProcessorError`` when the processor cannot answer (the sweeper retries)."""
    if transaction.get_connection().in_atomic_block:
        raise RuntimeError(
            "payment_fee_record calls the processor; call it after commit, outside transactions"
        )
    payment = Payment.objects.select_related("organization").get(pk=payment.pk)
    if (
        payment.processor != Payment.Processor.STRIPE
        or payment.status != Payment.Status.SUCCEEDED
        or not payment.processor_charge_id
    ):
        return None
    if payment.fee is not None:
        with transaction.atomic():
            return ledger_post_processor_fee(payment=payment, fee=payment.fee, currency=payment.currency)
    processor = processor or _stripe_processor()
    info = processor.balance_transaction_for_charge(charge_id=payment.processor_charge_id)
    if info is None:
        return None  # not settled yet: the sweeper asks again
    return _fee_store(payment=payment, info=info)


def payment_fees_sweep(*, batch_size: int = SWEEP_BATCH, processor: PaymentProcessor | None = None) -> int:
    """Beat, every minute: read the fee of succeeded Stripe payments that have none yet and
    were not touched for a minute (their enqueued task was lost, or the processor could not
    answer). Least recently tried first; a payment that fails again moves to the back of
    the queue (its ``updated_at`` is touched), so one bad charge never starves the others.
    Returns how many fees were stored."""
    now = clock.now()
    ids = list(
        fee_pending_payments()
        .filter(updated_at__lt=now - SWEEP_AFTER)
        .order_by("updated_at")
        .values_list("pk", flat=True)[:batch_size]
    )
    stored = 0
    processor = processor or (_stripe_processor() if ids else None)
    for payment_id in ids:
        try:
            payment_fee_record(payment=Payment(pk=payment_id), processor=processor)
        except ProcessorError as exc:
            logger.warning("processor fee of payment %s not read: %s", payment_id, exc)
        if Payment.objects.filter(pk=payment_id, fee__isnull=False).exists():
            stored += 1
        else:  # still unknown: to the back of the queue
            Payment.objects.filter(pk=payment_id, fee__isnull=True).update(updated_at=clock.now())
    return stored
