"""Balances are sums of entries. Amounts are debit-positive in the table; the selectors
for liability and revenue accounts return what is owed/earned as a positive number.

Organization- and customer-owned accounts have a running balance kept by a database
trigger (``LedgerBalance``), so a merchant's balance is one row however many entries it
has; the available balance adds a scan of the hold window only. Platform accounts are
summed over the covering index ``ledger_entry_balance_idx``.
"""

from datetime import datetime, timedelta

from django.db.models import Q, Sum

from accounts.models import Organization
from billing.ledger.models import LedgerAccount, LedgerBalance, LedgerEntry

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
    running = LedgerBalance.objects.filter(account_id=account_id).values_list("balance", flat=True).first()
    return int(running) if running is not None else _sum(account_id)


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
        debits_before_at=Sum("amount", filter=Q(created_at__lt=at, amount__gt=0), default=0),
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
