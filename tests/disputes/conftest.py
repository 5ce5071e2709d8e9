import pytest

from accounts.models import Organization
from billing.ledger import selectors
from billing.ledger.models import LedgerAccount, LedgerTransaction
from billing.orders.models import Order
from billing.orders.services import Line, order_create
from billing.payments import services as payment_services
from billing.payments.models import Payment

Kind = LedgerAccount.Kind


def ledger_view(organization, currency: str = "usd") -> dict[str, int]:
    """The balances a dispute moves: what the platform owes the merchant and the tax
    authority (positive: owed), and the cash held at the processor (positive: held)."""

    def raw(kind: str) -> int:
        account = LedgerAccount.objects.filter(
            kind=kind, organization=None, customer=None, currency=currency
        ).first()
        return selectors.account_balance(account) if account else 0

    return {
        "merchant": selectors.merchant_balance(organization, currency),
        "tax_payable": -raw(Kind.TAX_PAYABLE),
        "processor_cash": raw(Kind.PROCESSOR_CASH),
    }


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {name: after[name] - before[name] for name in before}


def dispute_postings(dispute) -> dict[str, dict[str, int]]:
    """{transaction type: {account kind: amount}} of the dispute's ledger transactions."""
    result: dict[str, dict[str, int]] = {}
    for tx in LedgerTransaction.objects.filter(dispute=dispute).prefetch_related("entries__account"):
        assert tx.type not in result, f"{tx.type} posted twice"
        result[tx.type] = {e.account.kind: e.amount for e in tx.entries.all()}
    return result


def pay_order(organization, customer, *, amount: int = 10_000, tax: int = 2_000, currency: str = "usd"):
    """An order paid by a manual payment recorded against it (no processor, no transaction
    needed): the payment's ``processor_payment_id`` is what dispute events point at."""
    order = order_create(
        organization=organization,
        customer=customer,
        billing_reason="purchase",
        currency=currency,
        lines=[Line(label="Thing", amount=amount)],
        tax=tax,
        tax_rate_bps=2000 if tax else 0,
    )
    payment = payment_services.payment_record_manual(
        organization=organization,
        customer=customer,
        reference=order.reference,
        amount=order.total,
        currency=currency,
        trigger="purchase",
        actor=None,
        note="bank transfer",
    )
    order.refresh_from_db()
    assert order.status == Order.Status.PAID
    return order, payment


@pytest.fixture
def paid_order(org, customer):
    return pay_order(org, customer)


def settled_payment(reference: str) -> Payment:
    return Payment.objects.get(reference=reference, status=Payment.Status.SUCCEEDED)


def organization_update(organization, **fields) -> None:
    Organization.objects.filter(pk=organization.pk).update(**fields)
    organization.refresh_from_db()
