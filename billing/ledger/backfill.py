"""The one-off backfill: postings for everything that moved money before the ledger (or a
posting) existed. Idempotent: every posting has its business key, and each kind only
selects rows still missing theirs, so a second run posts nothing.

``manage.py ledger_backfill`` runs it; reconciliation lists what it would fix.
"""

from dataclasses import dataclass

from django.db import transaction
from django.db.models import Exists, OuterRef

from billing.disputes.models import Dispute
from billing.ledger import postings
from billing.ledger.models import LedgerTransaction
from billing.ledger.reconciliation import (
    disputes_missing_postings,
    fees_missing_postings,
    refunds_missing_postings,
)
from billing.ledger.services import ledger_backfill_paid_orders
from billing.payments.models import Payment
from billing.refunds.models import Refund

TxType = LedgerTransaction.Type


@dataclass
class BackfillResult:
    orders: int = 0
    processor_fees: int = 0
    refunds: int = 0
    refund_reversals: int = 0
    disputes: int = 0
    dispute_reversals: int = 0

    @property
    def total(self) -> int:
        return sum(vars(self).values())


def _posted(type: str, **link) -> Exists:
    return Exists(LedgerTransaction.objects.filter(type=type, **link))


def _batched(ids: list, batch_size: int):
    for start in range(0, len(ids), batch_size):
        yield ids[start : start + batch_size]


def _fees(batch_size: int) -> int:
    """Payments whose fee is stored but not posted (the fee service stores and posts in one
    transaction, so only data from before it has this)."""
    ids = list(fees_missing_postings().values_list("pk", flat=True))
    posted = 0
    for chunk in _batched(ids, batch_size):
        with transaction.atomic():
            for payment in Payment.objects.filter(pk__in=chunk).select_related("organization"):
                postings.ledger_post_processor_fee(
                    payment=payment, fee=payment.fee, currency=payment.currency
                )
                posted += 1
    return posted


def _refunds(batch_size: int) -> tuple[int, int]:
    ids = list(refunds_missing_postings().values_list("pk", flat=True))
    refunds = reversals = 0
    for chunk in _batched(ids, batch_size):
        with transaction.atomic():
            for refund in (
                Refund.objects.filter(pk__in=chunk)
                .select_related("organization", "order", "customer", "payment")
                .annotate(posted=_posted(TxType.REFUND, refund=OuterRef("pk")))
                .order_by("created_at")
            ):
                if not refund.posted:
                    postings.ledger_post_refund(refund=refund)
                    refunds += 1
                if refund.status in (Refund.Status.FAILED, Refund.Status.CANCELED):
                    before = LedgerTransaction.objects.filter(
                        type=TxType.REFUND_REVERSAL, refund=refund
                    ).exists()
                    postings.ledger_post_refund_reversal(refund=refund)
                    reversals += 0 if before else 1
    return refunds, reversals


def _disputes(batch_size: int) -> tuple[int, int]:
    ids = list(disputes_missing_postings().values_list("pk", flat=True))
    withdrawals = reinstatements = 0
    for chunk in _batched(ids, batch_size):
        with transaction.atomic():
            for dispute in (
                Dispute.objects.filter(pk__in=chunk)
                .select_related("organization", "order", "customer", "payment")
                .annotate(reinstated=_posted(TxType.DISPUTE_REVERSAL, dispute=OuterRef("pk")))
                .order_by("created_at")
            ):
                if dispute.funds_withdrawn_at is not None:
                    postings.ledger_post_dispute(dispute=dispute)  # the withdrawal and the fee, by key
                    withdrawals += 1
                if dispute.funds_reinstated_at is not None and not dispute.reinstated:
                    postings.ledger_post_dispute_reversal(dispute=dispute)
                    reinstatements += 1
                postings.ledger_post_dispute_fee_reversal(dispute=dispute)  # by key; none without one
    return withdrawals, reinstatements


def ledger_backfill(*, batch_size: int = 500) -> BackfillResult:
    """Post whatever is missing: paid orders, stored processor fees, refunds (and the
    reversal of failed or canceled ones), disputes' withdrawals, fees and reinstatements.
    Orders come first, so a refund's reversal of a payment is posted after the payment."""
    result = BackfillResult()
    result.orders = ledger_backfill_paid_orders(batch_size=batch_size)
    result.processor_fees = _fees(batch_size)
    result.refunds, result.refund_reversals = _refunds(batch_size)
    result.disputes, result.dispute_reversals = _disputes(batch_size)
    return result
