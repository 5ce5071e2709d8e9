"""The postings of money moving after a payment: processor fees, refunds, disputes,
wallet credits and operators' balance adjustments (the paid order's own posting is
``services.ledger_post_order_paid``).

Sign convention as everywhere in the ledger: debits positive, credits negative. The
merchant balance and the customer wallet are liabilities, so money owed to the merchant
or the customer is a credit (negative). Each posting has a business idempotency key, so
a retried job or a replayed event records it once.
"""

from fractions import Fraction

from accounts.models import Customer, Organization
from billing.ledger.models import LedgerAccount, LedgerTransaction
from billing.ledger.services import account_for, ledger_post
from billing.money import multiply
from billing.orders.models import Order
from billing.payments.models import Payment
from core.errors import InvalidInput

Kind = LedgerAccount.Kind
TxType = LedgerTransaction.Type


def tax_share(order: Order, *, before: int, after: int) -> int:
    """The tax inside the slice ``(before, after]`` of the order's total. Computed as the
    difference of cumulative shares, so slices (partial refunds, a dispute) always add up
    to exactly the order's tax and never more."""
    if order.total <= 0 or order.tax <= 0:
        return 0
    before, after = max(0, min(before, order.total)), max(0, min(after, order.total))

    def upto(amount: int) -> int:
        return multiply(order.tax, Fraction(amount, order.total))

    return upto(after) - upto(before)


def ledger_post_processor_fee(*, payment: Payment, fee: int, currency: str) -> LedgerTransaction | None:
    """What the processor kept from a payment (read from its balance transaction): an
    expense of the platform, which its platform fee covers; the merchant is not charged."""
    if fee <= 0:
        return None
    return ledger_post(
        type=TxType.PROCESSOR_FEE,
        organization=payment.organization,
        idempotency_key=f"payment:{payment.pk}:processor_fee",
        entries=[
            (account_for(Kind.PROCESSOR_FEES, currency=currency), fee),
            (account_for(Kind.PROCESSOR_CASH, currency=currency), -fee),
        ],
        payment=payment,
        description=f"Processor fee for {payment.reference}",
    )


def _refund_entries(refund) -> list[tuple[LedgerAccount, int]]:
    org, currency = refund.organization, refund.currency
    entries = [
        (account_for(Kind.PROCESSOR_CASH, currency=currency), -refund.card_amount),
        (account_for(Kind.TAX_PAYABLE, currency=currency), refund.tax_amount),
        (account_for(Kind.MERCHANT_BALANCE, org, currency=currency), refund.amount - refund.tax_amount),
    ]
    if refund.wallet_amount:
        wallet = account_for(Kind.CUSTOMER_WALLET, org, refund.customer, currency=currency)
        entries.append((wallet, -refund.wallet_amount))
    return entries


def ledger_post_refund(*, refund) -> LedgerTransaction:
    """A refund: the card part leaves processor cash, the wallet part goes back to the
    customer's wallet; the merchant's balance and tax payable give back their shares in
    proportion (``refund.tax_amount``). The platform fee is kept."""
    return ledger_post(
        type=TxType.REFUND,
        organization=refund.organization,
        idempotency_key=f"refund:{refund.pk}",
        entries=_refund_entries(refund),
        order=refund.order,
        payment=refund.payment,
        refund=refund,
        customer=refund.customer,
        description=f"Refund for {refund.order}",
    )


def ledger_post_refund_reversal(*, refund) -> LedgerTransaction:
    """A refund the processor failed or canceled: its posting reversed, line by line."""
    return ledger_post(
        type=TxType.REFUND_REVERSAL,
        organization=refund.organization,
        idempotency_key=f"refund:{refund.pk}:reversal",
        entries=[(account, -amount) for account, amount in _refund_entries(refund)],
        order=refund.order,
        payment=refund.payment,
        refund=refund,
        customer=refund.customer,
        description=f"Failed refund for {refund.order} reversed",
    )


def _dispute_entries(dispute) -> list[tuple[LedgerAccount, int]]:
    org, currency = dispute.organization, dispute.currency
    return [
        (account_for(Kind.PROCESSOR_CASH, currency=currency), -dispute.amount),
        (account_for(Kind.TAX_PAYABLE, currency=currency), dispute.tax_amount),
        (account_for(Kind.MERCHANT_BALANCE, org, currency=currency), dispute.amount - dispute.tax_amount),
    ]


def _dispute_common(dispute) -> dict:
    return {
        "organization": dispute.organization,
        "order": dispute.order,
        "payment": dispute.payment,
        "dispute": dispute,
        "customer": dispute.customer,
    }


def _dispute_fee_entries(dispute, amount: int) -> list[tuple[LedgerAccount, int]]:
    """The merchant pays (``amount`` > 0) or gets back (< 0) a dispute fee, in the fee's own
    currency (Stripe's settlement currency)."""
    currency = dispute.fee_currency or dispute.currency
    return [
        (account_for(Kind.MERCHANT_BALANCE, dispute.organization, currency=currency), amount),
        (account_for(Kind.PROCESSOR_CASH, currency=currency), -amount),
    ]


def ledger_post_dispute(*, dispute) -> list[LedgerTransaction]:
    """Funds withdrawn for a dispute: the amount leaves processor cash, taken back from the
    merchant's balance and tax payable in proportion; the dispute fee, when it is known, is
    charged to the merchant. Returns the postings (the fee's only when there is one)."""
    posted = [
        ledger_post(
            type=TxType.DISPUTE,
            idempotency_key=f"dispute:{dispute.pk}:withdrawn",
            entries=_dispute_entries(dispute),
            description=f"Dispute {dispute.processor_dispute_id}: funds withdrawn",
            **_dispute_common(dispute),
        )
    ]
    fee = ledger_post_dispute_fee(dispute=dispute)
    return posted + ([fee] if fee is not None else [])


def ledger_post_dispute_fee(*, dispute) -> LedgerTransaction | None:
    """The dispute fee charged to the merchant (none when it is zero)."""
    if dispute.fee <= 0:
        return None
    return ledger_post(
        type=TxType.DISPUTE_FEE,
        idempotency_key=f"dispute:{dispute.pk}:fee",
        entries=_dispute_fee_entries(dispute, dispute.fee),
        description=f"Dispute {dispute.processor_dispute_id}: dispute fee",
        **_dispute_common(dispute),
    )


def ledger_post_dispute_fee_reversal(*, dispute) -> LedgerTransaction | None:
    """The part of the dispute fee given back with a won dispute (``dispute.fee_refunded``)."""
    if dispute.fee_refunded <= 0:
        return None
    return ledger_post(
        type=TxType.DISPUTE_FEE_REVERSAL,
        idempotency_key=f"dispute:{dispute.pk}:fee_refunded",
        entries=_dispute_fee_entries(dispute, -dispute.fee_refunded),
        description=f"Dispute {dispute.processor_dispute_id}: dispute fee given back",
        **_dispute_common(dispute),
    )


def ledger_post_dispute_reversal(*, dispute) -> LedgerTransaction:
    """A won dispute: the withdrawn funds come back (the fee's return, when there is one, is
    ``ledger_post_dispute_fee_reversal``)."""
    return ledger_post(
        type=TxType.DISPUTE_REVERSAL,
        organization=dispute.organization,
        idempotency_key=f"dispute:{dispute.pk}:reinstated",
        entries=[(account, -amount) for account, amount in _dispute_entries(dispute)],
        order=dispute.order,
        payment=dispute.payment,
        dispute=dispute,
        customer=dispute.customer,
        description=f"Dispute {dispute.processor_dispute_id}: funds reinstated",
    )


def ledger_post_wallet_credit(
    *,
    customer: Customer,
    amount: int,
    currency: str,
    idempotency_key: str,
    tax_amount: int = 0,
    description: str = "",
    order: Order | None = None,
) -> LedgerTransaction:
    """Credit (``amount`` > 0) or debit (< 0) the customer's wallet, funded by the merchant's
    balance. ``tax_amount`` is the part of a credit that gives back tax collected earlier
    (a downgrade or revocation credit of a taxed period), taken from tax payable instead."""
    if amount == 0:
        raise InvalidInput("A wallet credit needs a non-zero amount.", field="amount")
    if not 0 <= tax_amount <= abs(amount) or (tax_amount and amount < 0):
        raise InvalidInput("The tax part must lie between 0 and the credited amount.", field="tax_amount")
    org = customer.organization
    return ledger_post(
        type=TxType.WALLET_CREDIT,
        organization=org,
        idempotency_key=idempotency_key,
        entries=[
            (account_for(Kind.CUSTOMER_WALLET, org, customer, currency=currency), -amount),
            (account_for(Kind.TAX_PAYABLE, currency=currency), tax_amount),
            (account_for(Kind.MERCHANT_BALANCE, org, currency=currency), amount - tax_amount),
        ],
        order=order,
        customer=customer,
        description=description,
    )


def ledger_post_balance_adjustment(
    *, organization: Organization, amount: int, currency: str, idempotency_key: str, description: str
) -> LedgerTransaction:
    """An operator's correction of a merchant's balance: ``amount`` > 0 credits the merchant,
    < 0 debits it; the platform's adjustments account takes the other side."""
    if amount == 0:
        raise InvalidInput("An adjustment needs a non-zero amount.", field="amount")
    return ledger_post(
        type=TxType.BALANCE_ADJUSTMENT,
        organization=organization,
        idempotency_key=idempotency_key,
        entries=[
            (account_for(Kind.MERCHANT_BALANCE, organization, currency=currency), -amount),
            (account_for(Kind.ADJUSTMENTS, currency=currency), amount),
        ],
        description=description,
    )
