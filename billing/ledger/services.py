"""Posting to the ledger. Every state change that moves money calls a ``ledger_post_*``
service inside its own transaction, so the posting commits or rolls back with it."""

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from django.db import IntegrityError, transaction

from accounts.locks import customers_lock
from accounts.models import Customer, Organization
from billing.ledger.models import LedgerAccount, LedgerBalance, LedgerEntry, LedgerTransaction
from billing.orders.models import Order
from billing.orders.selectors import order_payment_references
from billing.payments.models import Payment
from billing.payments.selectors import reference_settled_payment
from core import clock
from core.errors import Conflict, InvalidInput

Kind = LedgerAccount.Kind
TxType = LedgerTransaction.Type

PAID_STATUSES = Order.PAID_STATUSES  # kept for importers; the set lives on the model


def account_for(
    kind: str,
    organization: Organization | None = None,
    customer: Customer | None = None,
    *,
    currency: str,
) -> LedgerAccount:
    """The account of this kind, owner and currency, created on first use."""
    if kind not in Kind.values:
        raise InvalidInput(f"unknown ledger account kind {kind!r}", field="kind")
    if not isinstance(currency, str) or len(currency) != 3 or currency != currency.lower():
        raise InvalidInput(f"currency must be a lowercase ISO 4217 code, got {currency!r}", field="currency")
    if kind == Kind.CUSTOMER_WALLET and customer is None:
        raise InvalidInput("a customer wallet needs a customer", field="customer")
    if customer is not None and organization is None:
        organization = customer.organization
    account, created = LedgerAccount.objects.get_or_create(
        kind=kind, organization=organization, customer=customer, currency=currency
    )
    if created and organization is not None:
        # Owned accounts keep a running balance (platform accounts do not: see LedgerBalance).
        LedgerBalance.objects.create(account=account)
    return account


def _check_entries(entries: Sequence[tuple[LedgerAccount, int]]) -> list[tuple[LedgerAccount, int]]:
    kept = []
    sums: dict[str, int] = defaultdict(int)
    for account, amount in entries:
        if not isinstance(account, LedgerAccount) or account.pk is None:
            raise InvalidInput("ledger entries need saved LedgerAccount objects", field="entries")
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise InvalidInput(f"ledger amounts are int minor units, got {amount!r}", field="entries")
        if amount == 0:
            continue  # a zero line records nothing
        sums[account.currency] += amount
        kept.append((account, amount))
    if not kept:
        raise InvalidInput("a ledger transaction needs at least one non-zero entry", field="entries")
    unbalanced = {currency: total for currency, total in sums.items() if total != 0}
    if unbalanced:
        detail = ", ".join(f"{currency} {total:+d}" for currency, total in sorted(unbalanced.items()))
        raise InvalidInput(f"ledger entries must sum to zero per currency; off by {detail}", field="entries")
    return kept


def _existing(idempotency_key: str, type: str, organization: Organization | None) -> LedgerTransaction | None:
    existing = LedgerTransaction.objects.filter(idempotency_key=idempotency_key).first()
    if existing is None:
        return None
    org_id = organization.pk if organization is not None else None
    if existing.type != type or existing.organization_id != org_id:
        raise Conflict(
            f"idempotency key {idempotency_key!r} was already used for a {existing.type} "
            f"transaction of another owner",
            field="idempotency_key",
        )
    return existing


def ledger_post(
    *,
    type: str,
    organization: Organization | None,
    idempotency_key: str,
    entries: Sequence[tuple[LedgerAccount, int]],
    order: Order | None = None,
    payment: Payment | None = None,
    refund=None,
    dispute=None,
    customer: Customer | None = None,
    description: str = "",
    at: datetime | None = None,
) -> LedgerTransaction:
    """Record one balanced transaction. Posting the same ``idempotency_key`` again returns
    the transaction recorded the first time and writes nothing. ``at`` dates a posting of
    an earlier event (the backfill); the default is now."""
    if type not in TxType.values:
        raise InvalidInput(f"unknown ledger transaction type {type!r}", field="type")
    if not idempotency_key:
        raise InvalidInput("a ledger transaction needs an idempotency key", field="idempotency_key")
    if (existing := _existing(idempotency_key, type, organization)) is not None:
        return existing
    lines = _check_entries(entries)
    now = at or clock.now()
    try:
        with transaction.atomic():
            # A wallet's running balance is only changed under its customer's lock (core.locks:
            # customers before ledger balances); callers that hold it already lose nothing.
            customers_lock({account.customer_id for account, _ in lines if account.customer_id})
            ledger_tx = LedgerTransaction.objects.create(
                created_at=now,
                type=type,
                organization=organization,
                order=order,
                payment=payment,
                refund=refund,
                dispute=dispute,
                customer=customer,
                idempotency_key=idempotency_key,
                description=description,
            )
            LedgerEntry.objects.bulk_create(
                LedgerEntry(
                    created_at=now,
                    transaction=ledger_tx,
                    account=account,
                    amount=amount,
                    currency=account.currency,
                )
                for account, amount in lines
            )
    except IntegrityError:
        # A concurrent post with the same key committed first: theirs is the posting.
        existing = _existing(idempotency_key, type, organization)
        if existing is None:
            raise
        return existing
    return ledger_tx


def order_paid_key(order: Order) -> str:
    return f"order:{order.pk}:paid"


def order_settled_payment(order: Order) -> Payment | None:
    """The succeeded payment that paid the order (its own reference, else its checkout's)."""
    for reference in order_payment_references(order):
        if (payment := reference_settled_payment(reference)) is not None:
            return payment
    return None


def ledger_post_order_paid(*, order: Order, at: datetime | None = None) -> LedgerTransaction | None:
    """The money of a paid order: gross to processor cash, tax to tax payable, the platform
    fee to platform revenue, the rest to the merchant's balance. Nothing for a free order.
    The processor's fee is posted separately, from the balance transaction."""
    if order.status not in PAID_STATUSES or order.total <= 0:
        return None
    currency, org = order.currency, order.organization
    merchant_share = order.total - order.tax - order.platform_fee
    # Part of the total paid from the customer's wallet never reaches the processor; a
    # negative applied balance is owed money the processor collected with this order.
    from_wallet = min(order.applied_balance, order.total)
    entries = [
        (account_for(Kind.PROCESSOR_CASH, currency=currency), order.total - from_wallet),
        (account_for(Kind.TAX_PAYABLE, currency=currency), -order.tax),
        (account_for(Kind.PLATFORM_REVENUE, currency=currency), -order.platform_fee),
        (account_for(Kind.MERCHANT_BALANCE, org, currency=currency), -merchant_share),
    ]
    if from_wallet:
        entries.append(
            (account_for(Kind.CUSTOMER_WALLET, org, order.customer, currency=currency), from_wallet)
        )
    return ledger_post(
        type=TxType.PAYMENT,
        organization=org,
        idempotency_key=order_paid_key(order),
        entries=entries,
        order=order,
        payment=order_settled_payment(order),
        description=f"Payment for {order}",
        at=at,
    )


def ledger_backfill_paid_orders(*, batch_size: int = 500) -> int:
    """Post every paid order that has no payment posting yet (orders paid before the ledger
    existed). Idempotent: a second run posts nothing. Returns how many were posted."""
    posted = 0
    missing = (
        Order.objects.filter(status__in=PAID_STATUSES, total__gt=0)
        .exclude(ledger_transactions__type=TxType.PAYMENT)
        .order_by("created_at", "pk")
        .values_list("pk", flat=True)
    )
    ids = list(missing)
    for start in range(0, len(ids), batch_size):
        with transaction.atomic():
            for order in Order.objects.filter(pk__in=ids[start : start + batch_size]).select_related(
                "organization"
            ):
                if ledger_post_order_paid(order=order, at=order.paid_at) is not None:
                    posted += 1
    return posted
