"""Balances are sums of entries. Amounts are debit-positive in the table; the selectors
for liability and revenue accounts return what is owed/earned as a positive number.

Organization- and customer-owned accounts have a running balance kept by a database
trigger (``LedgerBalance``, striped over at most ``LedgerBalance.SLOTS`` rows per account:
readers sum the slots), so a merchant's balance is a few rows however many entries it has; the available balance adds a scan of the hold window only. Platform accounts are
summed over the covering index ``ledger_entry_balance_idx``.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Q, Sum

from accounts.models import Organization
from billing.ledger.models import LedgerAccount, LedgerBalance, LedgerEntry, LedgerTransaction

Kind = LedgerAccount.Kind


def _account_id(kind: str, currency: str, organization: Organization | None = None):
    return (
        LedgerAccount.objects.filter(
            kind=kind, organization=organization, customer__isnull=True, currency=currency
        )
        .values_list("pk", flat=True)
        .first()
    )


def _sum(account_id, condition: Q | None = None) -> int:
    if account_id is None:
        return 0
    total = LedgerEntry.objects.filter(account_id=account_id).aggregate(
        total=Sum("amount", filter=condition, default=0)
    )["total"]
    return int(total)


def _balance(account_id) -> int:
    if account_id is None:
        return 0
    running = LedgerBalance.objects.filter(account_id=account_id).aggregate(
        total=Sum("balance"), slots=Count("slot")
    )
    return int(running["total"]) if running["slots"] else _sum(account_id)


def entries_sum(account: LedgerAccount) -> int:
    """The balance summed from the entries themselves (what reconciliation compares to)."""
    return _sum(account.pk)


def account_balance(account: LedgerAccount) -> int:
    """The raw balance: debits positive, credits negative."""
    return _balance(account.pk)


def merchant_balance(organization: Organization, currency: str) -> int:
    """What the platform owes the merchant in ``currency`` (positive: owed to the merchant)."""
    return -_balance(_account_id(Kind.MERCHANT_BALANCE, currency, organization))


def available_balance(organization: Organization, currency: str, at: datetime) -> int:
    """The part of the merchant's balance that can be paid out at ``at``: money in counts
    once it is older than the organization's payout hold; money out (refunds, disputes,
    payouts: debits) counts at once, so the available balance never exceeds the balance.
    That is the balance less the credits of the hold window (a short index range)."""
    cutoff = at - timedelta(days=organization.payout_hold_days)
    account_id = _account_id(Kind.MERCHANT_BALANCE, currency, organization)
    if account_id is None:
        return 0
    recent = LedgerEntry.objects.filter(account_id=account_id, created_at__gte=cutoff).aggregate(
        since_cutoff=Sum("amount", default=0),
        debits_before_at=Sum("amount", filter=Q(created_at__lte=at, amount__gt=0), default=0),
    )
    settled = _balance(account_id) - recent["since_cutoff"]  # entries older than the hold
    return -(settled + recent["debits_before_at"])


def platform_revenue(currency: str) -> int:
    """Platform fees earned in ``currency`` (positive)."""
    return -_sum(_account_id(Kind.PLATFORM_REVENUE, currency))


def wallet_balance(customer, currency: str) -> int:
    """What the customer's wallet holds in ``currency`` (positive: owed to the customer),
    before any reservation by pending orders (see ``billing.ledger.wallet``)."""
    account_id = (
        LedgerAccount.objects.filter(kind=Kind.CUSTOMER_WALLET, customer=customer, currency=currency)
        .values_list("pk", flat=True)
        .first()
    )
    return -_balance(account_id)


# --- balances per currency, statements, platform revenue (issue 6) ----------------------------


# Money out of the hold window, by what took it (merchant view: negative takes from the balance).
OUTFLOW_CATEGORIES: dict[str, str] = {
    LedgerTransaction.Type.REFUND: "refunds",
    LedgerTransaction.Type.REFUND_REVERSAL: "refunds",
    LedgerTransaction.Type.DISPUTE: "disputes",
    LedgerTransaction.Type.DISPUTE_REVERSAL: "disputes",
    LedgerTransaction.Type.DISPUTE_FEE: "disputes",
    LedgerTransaction.Type.DISPUTE_FEE_REVERSAL: "disputes",
    LedgerTransaction.Type.PAYOUT: "payouts",
    LedgerTransaction.Type.PAYOUT_REVERSAL: "payouts",
}
BREAKDOWN_OUTFLOWS = ("refunds", "disputes", "payouts", "other")


def available_breakdown(organization: Organization, currency: str, at: datetime) -> dict:
    """Why ``available`` is what it is, from the same hold-window range ``available_balance``
    reads (one grouped index range, bounded by the hold, not by the history):

    - ``settled``: the balance as it stood when the hold window began (``hold_started_at``);
    - ``held``: money in since then (payments, refunds or disputes given back, credits):
      not available until the hold has passed; it is ``pending``;
    - ``refunds``, ``disputes`` (amounts and fees), ``payouts``, ``other`` (adjustments,
      wallet credits): money out since then, which counts at once (zero or negative).

    So ``available = settled + refunds + disputes + payouts + other`` and
    ``balance = available + held``: a negative available balance is money out that
    exceeds what had settled, while the payments that would cover it are still held."""
    cutoff = at - timedelta(days=organization.payout_hold_days)
    result = {"hold_started_at": cutoff, "settled": 0, "held": 0, **dict.fromkeys(BREAKDOWN_OUTFLOWS, 0)}
    account_id = _account_id(Kind.MERCHANT_BALANCE, currency, organization)
    if account_id is None:
        return result
    rows = (
        LedgerEntry.objects.filter(account_id=account_id, created_at__gte=cutoff)
        .order_by()
        .values("transaction__type")
        .annotate(
            window=Sum("amount", default=0),
            debits=Sum("amount", filter=Q(created_at__lte=at, amount__gt=0), default=0),
        )
    )
    since_cutoff = 0
    held = 0
    for row in rows:
        since_cutoff += row["window"]
        debits = int(row["debits"])
        # Credits are negative in the table: what they add to the merchant's balance is held.
        held -= int(row["window"]) - debits
        category = OUTFLOW_CATEGORIES.get(row["transaction__type"], "other")
        result[category] -= debits
    result["settled"] = -(_balance(account_id) - int(since_cutoff))
    result["held"] = held
    return result


def organization_balances(organization: Organization, at: datetime) -> list[dict]:
    """Per currency the merchant has a balance account in: ``balance`` (what the platform
    owes), ``available`` (older than the payout hold, see ``available_balance``),
    ``pending`` (the rest), ``in_transit`` (paid out, not arrived yet) and ``breakdown``
    (``available_breakdown``: what holds and what took the available part). One query for
    the accounts and their running balances, then one hold-window scan per currency."""
    accounts = (
        LedgerAccount.objects.filter(
            organization=organization,
            customer__isnull=True,
            kind__in=[Kind.MERCHANT_BALANCE, Kind.MERCHANT_PAYOUTS_IN_TRANSIT],
        )
        .annotate(running=Sum("running_balances__balance"), slots=Count("running_balances"))
        .order_by("currency", "kind")
    )
    owed: dict[str, int] = {}
    in_transit: dict[str, int] = {}
    for account in accounts:
        amount = -(account.running if account.slots else _sum(account.pk))
        (owed if account.kind == Kind.MERCHANT_BALANCE else in_transit)[account.currency] = amount
    rows = []
    for currency in sorted(owed):
        balance = owed[currency]
        breakdown = available_breakdown(organization, currency, at)
        available = breakdown["settled"] + sum(breakdown[name] for name in BREAKDOWN_OUTFLOWS)
        rows.append(
            {
                "currency": currency,
                "balance": balance,
                "available": available,
                "pending": balance - available,
                "in_transit": in_transit.get(currency, 0),
                "breakdown": breakdown,
            }
        )
    return rows


def platform_revenue_since(since: datetime) -> dict[str, int]:
    """Platform fees earned since ``since`` per currency (credits of the platform revenue
    accounts): an index-only range scan of ``ledger_entry_balance_idx`` per account."""
    accounts = dict(
        LedgerAccount.objects.filter(
            kind=Kind.PLATFORM_REVENUE, organization__isnull=True, customer__isnull=True
        ).values_list("pk", "currency")
    )
    if not accounts:
        return {}
    rows = (
        LedgerEntry.objects.filter(account_id__in=list(accounts), created_at__gte=since, amount__lt=0)
        .order_by()
        .values("account_id")
        .annotate(total=Sum("amount"))
    )
    totals: dict[str, int] = {}
    for row in rows:
        currency = accounts[row["account_id"]]
        totals[currency] = totals.get(currency, 0) - int(row["total"])
    return {currency: total for currency, total in totals.items() if total}


@dataclass
class Statement:
    """A merchant's balance account over ``[start, end)``: amounts as the merchant sees them
    (positive: the balance goes up)."""

    organization: Organization
    currency: str
    start: datetime
    end: datetime
    account_id: object | None
    opening: int
    closing: int
    count: int
    totals: dict[str, int]  # per transaction type

    def lines(self, limit: int | None = None) -> Iterator["StatementLine"]:
        """The entries of the range, oldest first, with their running balance. Streams
        (server-side cursor), so a year of entries never sits in memory at once."""
        if self.account_id is None:
            return
        entries = (
            LedgerEntry.objects.filter(
                account_id=self.account_id, created_at__gte=self.start, created_at__lt=self.end
            )
            .select_related("transaction", "transaction__order")
            .order_by("created_at", "id")
        )
        if limit is not None:
            entries = entries[:limit]
        running = self.opening
        for entry in entries.iterator(chunk_size=2000):
            amount = -entry.amount
            running += amount
            yield StatementLine(entry=entry, amount=amount, balance=running)


@dataclass(frozen=True)
class StatementLine:
    entry: LedgerEntry
    amount: int
    balance: int

    @property
    def transaction(self):
        return self.entry.transaction


def merchant_statement(
    organization: Organization, currency: str, start: datetime, end: datetime
) -> Statement:
    """Opening balance at ``start``, the totals of ``[start, end)`` per transaction type and
    the closing balance at ``end``. The opening balance is the running balance less
    everything since ``start`` (a short index range for recent statements)."""
    account_id = _account_id(Kind.MERCHANT_BALANCE, currency, organization)
    if account_id is None:
        return Statement(organization, currency, start, end, None, 0, 0, 0, {})
    since_start = LedgerEntry.objects.filter(account_id=account_id, created_at__gte=start).aggregate(
        total=Sum("amount", default=0)
    )["total"]
    opening = -(_balance(account_id) - int(since_start))
    rows = (
        LedgerEntry.objects.filter(account_id=account_id, created_at__gte=start, created_at__lt=end)
        .order_by()
        .values("transaction__type")
        .annotate(total=Sum("amount"), n=Count("id"))
    )
    totals = {row["transaction__type"]: -int(row["total"]) for row in rows}
    count = sum(row["n"] for row in rows)
    return Statement(
        organization=organization,
        currency=currency,
        start=start,
        end=end,
        account_id=account_id,
        opening=opening,
        closing=opening + sum(totals.values()),
        count=count,
        totals=dict(sorted(totals.items())),
    )
