"""Reconciliation: proves the ledger agrees with itself and with the orders.

Checks that every transaction sums to zero per currency (the database already refuses
otherwise; this catches a disabled trigger or a restored dump), that every entry's
currency is its account's, that every running balance equals the sum of its
entries, that every paid order with a total has its payment posting,
and that the trial balance (all entries per currency) is zero.
"""

from django.db import connection

from billing.ledger.models import LedgerTransaction, ReconciliationRun
from billing.ledger.services import PAID_STATUSES
from billing.orders.models import Order
from core import clock

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
        Order.objects.filter(status__in=PAID_STATUSES, total__gt=0)
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
          FROM ledger_ledgerbalance b
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


def reconcile() -> list[dict]:
    """Every discrepancy found, as JSON-ready dicts with a ``check`` name; empty when clean."""
    return [
        *_unbalanced_transactions(),
        *_empty_transactions(),
        *_currency_mismatches(),
        *_running_balances(),
        *_orders_without_posting(),
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
