"""Reconciliation: proves the ledger agrees with itself and with the orders.

Checks that every transaction sums to zero per currency (the database already refuses
otherwise; this catches a disabled trigger or a restored dump), that every entry's
currency is its account's, that every running balance equals the sum of its
entries, that every paid order with a total has its payment posting, every stored
processor fee its fee posting, every refund its posting (and a failed or canceled one its
reversal), every dispute whose funds moved its postings, that each order's refunded
amount is the sum of its live refunds, and that the trial balance (all entries per
currency) is zero. Each check is one set-based query.
"""

from django.db import connection
from django.db.models import Exists, OuterRef, Q

from billing.disputes.models import Dispute
from billing.ledger.models import LedgerTransaction, ReconciliationRun
from billing.orders.models import Order
from billing.payments.models import Payment
from billing.refunds.models import Refund
from core import clock

TxType = LedgerTransaction.Type

LIMIT = 1000  # discrepancies listed per check; the count is always exact


def _rows(sql: str, params=()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _unbalanced_transactions() -> list[dict]:
    rows = _rows(
        """
        SELECT transaction_id, currency, SUM(amount)
          FROM ledger_ledgerentry
         GROUP BY transaction_id, currency
        HAVING SUM(amount) <> 0
         ORDER BY transaction_id, currency
         LIMIT %s
        """,
        [LIMIT],
    )
    return [
        {"check": "transaction_unbalanced", "transaction": str(tx), "currency": cur, "sum": int(total)}
        for tx, cur, total in rows
    ]


def _empty_transactions() -> list[dict]:
    empty = LedgerTransaction.objects.filter(entries__isnull=True).values_list("pk", flat=True)[:LIMIT]
    return [{"check": "transaction_without_entries", "transaction": str(pk)} for pk in empty]


def _currency_mismatches() -> list[dict]:
    rows = _rows(
        """
        SELECT e.id, e.currency, a.currency
          FROM ledger_ledgerentry e JOIN ledger_ledgeraccount a ON a.id = e.account_id
         WHERE e.currency <> a.currency
         LIMIT %s
        """,
        [LIMIT],
    )
    return [
        {"check": "entry_currency_mismatch", "entry": entry, "currency": cur, "account_currency": acc}
        for entry, cur, acc in rows
    ]


def _orders_without_posting() -> list[dict]:
    missing = (
        Order.objects.filter(status__in=Order.PAID_STATUSES, total__gt=0)
        .exclude(ledger_transactions__type=LedgerTransaction.Type.PAYMENT)
        .order_by("created_at")
        .values_list("pk", "organization_id", "total", "currency")[:LIMIT]
    )
    return [
        {
            "check": "paid_order_without_posting",
            "order": str(pk),
            "organization": str(org),
            "total": total,
            "currency": currency,
        }
        for pk, org, total, currency in missing
    ]


def _running_balances() -> list[dict]:
    rows = _rows(
        """
        SELECT b.account_id, b.balance, COALESCE(SUM(e.amount), 0)
          FROM (SELECT account_id, SUM(balance) AS balance
                  FROM ledger_ledgerbalance GROUP BY account_id) AS b
          LEFT JOIN ledger_ledgerentry e ON e.account_id = b.account_id
         GROUP BY b.account_id, b.balance
        HAVING b.balance <> COALESCE(SUM(e.amount), 0)
         LIMIT %s
        """,
        [LIMIT],
    )
    return [
        {
            "check": "running_balance_mismatch",
            "account": str(acc),
            "balance": int(bal),
            "entries_sum": int(total),
        }
        for acc, bal, total in rows
    ]


def _trial_balance() -> list[dict]:
    rows = _rows(
        "SELECT currency, SUM(amount) FROM ledger_ledgerentry GROUP BY currency HAVING SUM(amount) <> 0"
    )
    return [{"check": "trial_balance_nonzero", "currency": cur, "sum": int(total)} for cur, total in rows]


def _posted(type: str, **link) -> Exists:
    """A posting of ``type`` linked to the outer row (``refund=OuterRef("pk")`` ...)."""
    return Exists(LedgerTransaction.objects.filter(type=type, **link))


def fees_missing_postings():
    """Payments whose stored fee has no posting (shared with the backfill, which posts them)."""
    return (
        Payment.objects.filter(fee__gt=0)
        .exclude(_posted(TxType.PROCESSOR_FEE, payment=OuterRef("pk")))
        .order_by("created_at")
    )


def refunds_missing_postings():
    """Refunds without their posting, or failed/canceled ones without their reversal."""
    reversed_statuses = (Refund.Status.FAILED, Refund.Status.CANCELED)
    return (
        Refund.objects.annotate(
            posted=_posted(TxType.REFUND, refund=OuterRef("pk")),
            reversed=_posted(TxType.REFUND_REVERSAL, refund=OuterRef("pk")),
        )
        .filter(Q(posted=False) | Q(status__in=reversed_statuses, reversed=False))
        .order_by("created_at")
    )


def disputes_missing_postings():
    """Withdrawn funds without their dispute posting (or the fee's, when there is a fee);
    reinstated funds without their reversal; a fee given back without its posting."""
    return (
        Dispute.objects.filter(Q(funds_withdrawn_at__isnull=False) | Q(funds_reinstated_at__isnull=False))
        .annotate(
            withdrawn=_posted(TxType.DISPUTE, dispute=OuterRef("pk")),
            fee_posted=_posted(TxType.DISPUTE_FEE, dispute=OuterRef("pk")),
            reinstated=_posted(TxType.DISPUTE_REVERSAL, dispute=OuterRef("pk")),
            fee_reversed=_posted(TxType.DISPUTE_FEE_REVERSAL, dispute=OuterRef("pk")),
        )
        .filter(
            Q(funds_withdrawn_at__isnull=False, withdrawn=False)
            | Q(funds_withdrawn_at__isnull=False, fee__gt=0, fee_posted=False)
            | Q(funds_reinstated_at__isnull=False, reinstated=False)
            | Q(fee_refunded__gt=0, fee_reversed=False)
        )
        .order_by("created_at")
    )


def _fees_without_posting() -> list[dict]:
    missing = fees_missing_postings().values_list("pk", "organization_id", "fee", "currency")[:LIMIT]
    return [
        {"check": "processor_fee_without_posting", "payment": str(pk), "organization": str(org),
         "fee": fee, "currency": currency}
        for pk, org, fee, currency in missing
    ]  # fmt: skip


def _refunds_without_posting() -> list[dict]:
    """Every refund is posted when it is recorded; a failed or canceled one is reversed."""
    rows = refunds_missing_postings().values_list(
        "pk", "organization_id", "order_id", "status", "amount", "currency", "posted"
    )[:LIMIT]
    return [
        {"check": "refund_without_posting", "refund": str(pk), "organization": str(org), "order": str(order),
         "status": status, "amount": amount, "currency": currency,
         "missing": "refund" if not posted else "refund_reversal"}
        for pk, org, order, status, amount, currency, posted in rows
    ]  # fmt: skip


def _disputes_without_posting() -> list[dict]:
    rows = (
        disputes_missing_postings()
        .values_list(
            "pk", "organization_id", "processor_dispute_id", "amount", "currency", "fee",
            "funds_withdrawn_at", "funds_reinstated_at", "withdrawn", "fee_posted", "reinstated",
            "fee_refunded", "fee_reversed",
        )[:LIMIT]
    )  # fmt: skip
    found = []
    for row in rows:
        pk, org, dp, amount, currency, fee, out_at, back_at, withdrawn, fee_posted, reinstated = row[:11]
        fee_refunded, fee_reversed = row[11:]
        missing = []
        if out_at is not None and not withdrawn:
            missing.append("dispute")
        if out_at is not None and fee > 0 and not fee_posted:
            missing.append("dispute_fee")
        if back_at is not None and not reinstated:
            missing.append("dispute_reversal")
        if fee_refunded > 0 and not fee_reversed:
            missing.append("dispute_fee_reversal")
        found.append(
            {"check": "dispute_without_posting", "dispute": str(pk), "processor_dispute_id": dp,
             "organization": str(org), "amount": amount, "currency": currency, "missing": missing}
        )  # fmt: skip
    return found


def _order_refunded_mismatches() -> list[dict]:
    """``Order.refunded_amount`` is the sum of the order's pending and succeeded refunds."""
    live = (Refund.Status.PENDING, Refund.Status.SUCCEEDED)
    rows = _rows(
        f"""
        SELECT o.id, o.organization_id, o.refunded_amount, COALESCE(r.total, 0), o.currency
          FROM {Order._meta.db_table} o
          LEFT JOIN (SELECT order_id, SUM(amount) AS total
                       FROM {Refund._meta.db_table}
                      WHERE status IN (%s, %s)
                      GROUP BY order_id) r ON r.order_id = o.id
         WHERE o.refunded_amount <> COALESCE(r.total, 0)
         ORDER BY o.created_at
         LIMIT %s
        """,
        [*live, LIMIT],
    )
    return [
        {"check": "order_refunded_mismatch", "order": str(pk), "organization": str(org),
         "refunded_amount": int(refunded), "refunds_sum": int(total), "currency": currency}
        for pk, org, refunded, total, currency in rows
    ]  # fmt: skip


def reconcile() -> list[dict]:
    """Every discrepancy found, as JSON-ready dicts with a ``check`` name; empty when clean."""
    return [
        *_unbalanced_transactions(),
        *_empty_transactions(),
        *_currency_mismatches(),
        *_running_balances(),
        *_orders_without_posting(),
        *_fees_without_posting(),
        *_refunds_without_posting(),
        *_disputes_without_posting(),
        *_order_refunded_mismatches(),
        *_trial_balance(),
    ]


def reconciliation_run() -> ReconciliationRun:
    """Reconcile and store the result (the dashboard shows the latest run)."""
    started = clock.now()
    discrepancies = reconcile()
    return ReconciliationRun.objects.create(
        started_at=started, finished_at=clock.now(), ok=not discrepancies, discrepancies=discrepancies
    )


def last_reconciliation() -> ReconciliationRun | None:
    return ReconciliationRun.objects.order_by("-started_at", "-id").first()
