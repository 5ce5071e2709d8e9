"""The customer wallet: a balance per customer and currency that pays the next orders
(DESIGN.md section 3: ``applied_balance`` and ``due``).

The balance is the ledger's ``customer_wallet`` account (``selectors.wallet_balance``,
positive: owed to the customer). Pending orders reserve what they will take from it
without a ledger entry: ``available = balance - sum(applied_balance of pending orders)``.
When such an order is paid, ``ledger_post_order_paid`` debits the wallet by its applied
balance; when it is voided, its reservation disappears with it. Every reader and writer
of the available balance holds the customer's row lock, so two orders never spend the
same money.

A due the processor cannot charge (below the currency's minimum, or off its granularity) is
never sent to it: ``wallet_carry_unchargeable`` pays that part from the wallet, which may
then go below zero (the customer owes it), and the next order collects it, as Stripe adds
an invoice under its minimum to the customer balance. Reservations are signed for this:
a pending order collecting a debt reserves it (a negative ``applied_balance``), so two
orders never collect the same debt.

Credits come from downgrades (``billing.subscriptions.billing``), revocations
(``subscription_revoke(credit=True)``) and adjustments (``wallet_adjust``, by merchants
over the API or by operators holding ``ledger.adjust_balance``).
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from uuid import UUID, uuid4

from django.db import transaction
from django.db.models import Q, Sum

from accounts.locks import customer_lock, customers_lock
from accounts.models import Customer, User
from billing.ledger.models import LedgerAccount, LedgerBalance, LedgerEntry, LedgerTransaction
from billing.ledger.postings import ledger_post_wallet_credit
from billing.ledger.selectors import wallet_balance
from billing.money import (
    LEDGER_AMOUNT_MAX,
    amount_in_bounds,
    chargeable_part,
    format_amount,
    get_currency,
    is_supported_currency,
)
from billing.orders.amounts import order_balance_set
from billing.orders.models import Order
from core.audit import audit_record
from core.errors import Forbidden, InvalidInput
from core.retry import retry_on_conflict

Kind = LedgerAccount.Kind
ADJUST_PERMISSION = "ledger.adjust_balance"


# --- reading ---------------------------------------------------------------------------------


# Pending orders that will move the wallet when paid: a positive applied balance takes
# from it, a negative one pays back what the customer owes.
RESERVING = Q(status=Order.Status.PENDING) & ~Q(applied_balance=0)


def wallet_reserved(customer: Customer, currency: str) -> int:
    """What the customer's pending orders will take from the wallet when they are paid
    (negative when they collect more owed money than they take)."""
    total = Order.objects.filter(RESERVING, customer=customer, currency=currency).aggregate(
        total=Sum("applied_balance", default=0)
    )["total"]
    return int(total)


def wallet_open_balance(customer: Customer, currency: str) -> int:
    """What the next order may take from the wallet, signed: negative is an amount the
    customer owes (carried from an order below the minimum charge) that it collects."""
    return wallet_balance(customer, currency) - wallet_reserved(customer, currency)


def wallet_available(customer: Customer, currency: str) -> int:
    """What a new order may still take from the wallet (never below zero)."""
    return max(0, wallet_open_balance(customer, currency))


@dataclass(frozen=True)
class WalletBalance:
    currency: str
    balance: int
    reserved: int

    @property
    def available(self) -> int:
        return max(0, self.balance - self.reserved)


def wallet_balances(customer: Customer) -> list[WalletBalance]:
    """Every currency the customer's wallet has held, with its balance and reservations.
    Two queries whatever the number of currencies."""
    balances = dict(
        LedgerBalance.objects.filter(account__kind=Kind.CUSTOMER_WALLET, account__customer=customer)
        .values_list("account__currency")
        .annotate(total=Sum("balance"))
        .order_by("account__currency")
    )
    reserved = dict(
        Order.objects.filter(RESERVING, customer=customer)
        .order_by()
        .values_list("currency")
        .annotate(total=Sum("applied_balance"))
    )
    currencies = sorted(set(balances) | set(reserved))
    return [
        WalletBalance(currency=c, balance=-int(balances.get(c, 0)), reserved=int(reserved.get(c, 0)))
        for c in currencies
    ]


def wallet_entries(customer: Customer):
    """The wallet's ledger lines, newest first, each with its transaction (amount: the
    entry as the customer sees it, positive = credited to the wallet, is ``-entry.amount``)."""
    return (
        LedgerEntry.objects.filter(account__kind=Kind.CUSTOMER_WALLET, account__customer=customer)
        .select_related("transaction", "account")
        .order_by("-created_at", "-id")
    )


def wallet_funded_customers(customer_ids: Iterable[UUID]) -> set[tuple[UUID, str]]:
    """The (customer, currency) pairs among these customers whose wallet holds money or a
    debt to collect. One query: the renewal job asks once per chunk, so customers without a
    wallet cost nothing."""
    ids = list(set(customer_ids))
    if not ids:
        return set()
    return {
        (customer_id, currency)
        for customer_id, currency, _ in LedgerBalance.objects.filter(
            account__kind=Kind.CUSTOMER_WALLET, account__customer_id__in=ids
        )
        .values_list("account__customer_id", "account__currency")
        .annotate(total=Sum("balance"))
        .exclude(total=0)
    }


def wallet_lock_available(pairs: Iterable[tuple[UUID, str]]) -> dict[tuple[UUID, str], int]:
    """Lock these customers' rows (in id order, inside the caller's transaction) and return
    what each (customer, currency) wallet still has open (``wallet_open_balance``, signed)."""
    pairs = set(pairs)
    if not pairs:
        return {}
    customer_ids = sorted({customer_id for customer_id, _ in pairs})
    customers_lock(customer_ids)
    balances = {
        (customer_id, currency): -int(balance)
        for customer_id, currency, balance in LedgerBalance.objects.filter(
            account__kind=Kind.CUSTOMER_WALLET, account__customer_id__in=customer_ids
        )
        .values_list("account__customer_id", "account__currency")
        .annotate(total=Sum("balance"))
    }
    reserved: dict[tuple[UUID, str], int] = defaultdict(int)
    for customer_id, currency, total in (
        Order.objects.filter(RESERVING, customer_id__in=customer_ids)
        .order_by()
        .values_list("customer_id", "currency")
        .annotate(total=Sum("applied_balance"))
    ):
        reserved[(customer_id, currency)] = int(total)
    return {pair: balances.get(pair, 0) - reserved[pair] for pair in pairs}


# --- applying the wallet to an order -----------------------------------------------------------


def applicable_amount(*, total: int, available: int, currency: str) -> int:
    """How much of ``available`` an order of ``total`` takes: as much as possible, but never
    leaving a remainder the processor cannot charge (below the currency's minimum or off its
    granularity); then less is applied so the remainder is chargeable. A negative
    ``available`` (the customer owes it) is collected with the order: applied is negative."""
    if total <= 0 or available == 0:
        return 0
    if available < 0:
        return available
    applied = min(available, total)
    due = total - applied
    if due == 0:
        return applied
    cur = get_currency(currency)
    chargeable = max(due, cur.minimum_charge or 1)
    if chargeable % cur.granularity:
        chargeable += cur.granularity - chargeable % cur.granularity
    if chargeable >= total:
        return 0  # the whole order is charged as before
    return total - chargeable


def wallet_apply(*, order: Order, available: int | None = None) -> int:
    """Apply the customer's wallet to an order being created: sets ``applied_balance``,
    ``due`` and the platform fee (on the money actually processed: wallet money paid its fee
    when it came in). Without ``available`` the customer's row is locked and the available
    balance read here (so the caller must be in a transaction); batch callers pass what
    ``wallet_lock_available`` returned and subtract the result. Returns the applied amount."""
    if available is None:
        if not transaction.get_connection().in_atomic_block:
            raise RuntimeError("wallet_apply locks the customer: call it inside a transaction")
        customer_lock(order.customer_id)
        available = wallet_open_balance(order.customer, order.currency)
    return _apply(order, applicable_amount(total=order.total, available=available, currency=order.currency))


def wallet_apply_preview(*, order: Order) -> int:
    """``wallet_apply`` for a preview: the same computation without the lock (writes nothing)."""
    available = wallet_open_balance(order.customer, order.currency)
    return _apply(order, applicable_amount(total=order.total, available=available, currency=order.currency))


def _apply(order: Order, applied: int) -> int:
    order_balance_set(order, applied=applied)
    return applied


def wallet_carry_unchargeable(*, order: Order) -> int:
    """An order being created whose due the processor cannot charge (above zero but below
    the currency's minimum, or off its granularity) keeps that part away from the processor:
    the wallet pays it, going below zero if it must (the customer owes it), and the
    customer's next order collects it (``applicable_amount``). Nothing is charged or lost;
    the order's posting debits the wallet like any wallet payment. Sets
    ``carried_forward`` and returns the amount carried."""
    carried = order.due - chargeable_part(order.due, order.currency)
    order_balance_set(order, applied=order.applied_balance + carried, carried=carried)
    return carried


# --- adjustments -----------------------------------------------------------------------------


def check_adjust_permission(actor) -> None:
    """Operators (users) need ``ledger.adjust_balance``; merchants over the API (no actor)
    adjust their own customers' wallets."""
    if isinstance(actor, User) and not actor.has_perm(ADJUST_PERMISSION):
        raise Forbidden(
            "Adjusting balances needs the ledger.adjust_balance permission (finance or admin).",
            code="permission_denied",
        )


def clean_adjustment(*, amount, currency, reason: str) -> tuple[int, str, str]:
    """The shared checks of a manual adjustment: a reason, a supported currency, a non-zero
    whole amount of minor units."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("Say why the balance is adjusted.", field="reason", code="required")
    currency = (currency or "").lower()
    if not is_supported_currency(currency):
        raise InvalidInput("Unsupported currency.", field="currency", code="invalid_currency")
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise InvalidInput("The amount is a whole number of minor units.", field="amount", code="invalid")
    if amount == 0:
        raise InvalidInput("The amount must not be zero.", field="amount", code="zero")
    if not amount_in_bounds(amount):
        raise InvalidInput(
            f"The amount is at most {LEDGER_AMOUNT_MAX} minor units either way.",
            field="amount",
            code="too_large",
        )
    return amount, currency, reason


@retry_on_conflict
def wallet_adjust(
    *,
    customer: Customer,
    amount: int,
    currency: str,
    reason: str,
    actor=None,
    idempotency_key: str | None = None,
) -> LedgerTransaction:
    """Credit (``amount`` > 0) or debit (< 0) a customer's wallet, funded by (or returned to)
    the merchant's balance. A debit never takes the wallet below what pending orders have
    reserved. Audited ``wallet.adjust``. The same ``idempotency_key`` posts once."""
    check_adjust_permission(actor)
    amount, currency, reason = clean_adjustment(amount=amount, currency=currency, reason=reason)
    key = f"wallet:{customer.pk}:adjustment:{idempotency_key or uuid4()}"
    with transaction.atomic():
        customer = customer_lock(customer.pk, related=("organization",))
        existing = LedgerTransaction.objects.filter(idempotency_key=key).first()
        if existing is not None:
            return existing
        if amount < 0:
            available = wallet_available(customer, currency)
            if -amount > available:
                raise InvalidInput(
                    f"The wallet has {format_amount(available, currency)} available; "
                    f"it cannot be debited {format_amount(-amount, currency)}.",
                    field="amount",
                    code="insufficient_balance",
                )
        ledger_tx = ledger_post_wallet_credit(
            customer=customer,
            amount=amount,
            currency=currency,
            idempotency_key=key,
            description=f"Wallet adjustment: {reason}",
        )
        audit_record(
            actor=actor,
            action="wallet.adjust",
            target=customer,
            organization=customer.organization,
            reason=reason,
            data={"amount": amount, "currency": currency, "transaction": str(ledger_tx.pk)},
        )
    return ledger_tx
