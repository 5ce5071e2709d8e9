"""Property tests of the ledger: random sequences of payments, partial refunds (some failing
later), disputes won, lost or still open, wallet credits and debits and balance adjustments,
all through the real services, keep every invariant, and every balance equals the sum of what
happened, computed here independently from the operations' own results.

Each example works in a fresh organization and compares platform accounts by their change
during the example, so examples need no cleanup between them. Every service commits (the
database is used without a wrapping transaction), so the deferred zero-sum trigger really
checks every posting at commit.
"""

import itertools
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import Organization, User
from billing.disputes.services import dispute_apply_snapshot
from billing.ledger import selectors
from billing.ledger.adjustments import balance_adjust
from billing.ledger.models import LedgerAccount, LedgerEntry
from billing.ledger.reconciliation import reconcile
from billing.ledger.wallet import wallet_adjust
from billing.money import multiply
from billing.orders.models import Order
from billing.orders.services import Line, order_create
from billing.payments.services import payment_record_manual
from billing.refunds.models import Refund
from billing.refunds.services import refund_apply_outcome, refund_create, refund_submit
from core.errors import ServiceError

Kind = LedgerAccount.Kind
CURRENCY = "usd"
DISPUTE_FEE = 1500
_serial = itertools.count()


@dataclass
class Expected:
    """What the balances must be, kept from the operations alone."""

    merchant: int = 0
    platform_revenue: int = 0
    tax_payable: int = 0
    processor_cash: int = 0
    wallets: dict = field(default_factory=lambda: defaultdict(int))
    orders: list = field(default_factory=list)
    refunds: list = field(default_factory=list)


def platform_sum(kind: str) -> int:
    """The platform account's raw balance (debit-positive), summed over its entries."""
    return sum(
        LedgerEntry.objects.filter(
            account__kind=kind, account__organization__isnull=True, currency=CURRENCY
        ).values_list("amount", flat=True)
    )


def pay(org, customer, expected: Expected, amount: int, tax_bps: int, inclusive: bool) -> None:
    tax = multiply(amount, Fraction(tax_bps, 10_000 + tax_bps if inclusive else 10_000))
    order = order_create(
        organization=org,
        customer=customer,
        billing_reason="purchase",
        currency=CURRENCY,
        lines=[Line(label="Thing", amount=amount)],
        tax=tax,
        tax_rate_bps=tax_bps,
        tax_inclusive=inclusive,
    )
    payment_record_manual(
        organization=org,
        customer=customer,
        reference=order.reference,
        amount=order.due,
        currency=CURRENCY,
        trigger="purchase",
        actor=None,
        note="bank transfer",
    )
    order.refresh_from_db()
    assert order.status == Order.Status.PAID
    expected.orders.append(order)
    expected.merchant += order.total - order.tax - order.platform_fee
    expected.platform_revenue += order.platform_fee
    expected.tax_payable += order.tax
    expected.processor_cash += order.total


def refund(expected: Expected, actor, pick: int, share: Fraction) -> None:
    order = expected.orders[pick % len(expected.orders)]
    order.refresh_from_db()
    refundable = order.total - order.refunded_amount
    amount = max(1, multiply(refundable, share))
    before = (order.refunded_amount, Refund.objects.filter(order=order).count())
    disputed = order.dispute_outcome in ("open", "lost")
    if disputed or refundable <= 0 or share > 1:
        # refused (a disputed order, nothing left, more than is left), and nothing changes
        with pytest.raises(ServiceError):
            refund_create(
                order=order,
                amount=refundable + 1 if share > 1 else amount,
                reason="requested_by_customer",
                actor=actor,
            )
        order.refresh_from_db()
        assert (order.refunded_amount, Refund.objects.filter(order=order).count()) == before
        return
    created = refund_create(order=order, amount=amount, reason="requested_by_customer", actor=actor)
    refund_submit(refund=created)
    created.refresh_from_db()
    assert created.status == Refund.Status.SUCCEEDED
    assert created.amount == amount and created.wallet_amount == 0
    expected.refunds.append(created)
    expected.merchant -= amount - created.tax_amount
    expected.tax_payable -= created.tax_amount
    expected.processor_cash -= amount


def refund_fails(expected: Expected, pick: int) -> None:
    live = [r for r in expected.refunds if r.status == Refund.Status.SUCCEEDED]
    if not live:
        return
    target = live[pick % len(live)]
    refund_apply_outcome(
        refund=target,
        status="failed",
        processor_refund_id=target.processor_refund_id,
        failure_reason="expired_or_canceled_card",
        observed_at=datetime.now(UTC) + timedelta(seconds=next(_serial)),
    )
    target.refresh_from_db()
    assert target.status == Refund.Status.FAILED
    expected.merchant += target.amount - target.tax_amount
    expected.tax_payable += target.tax_amount
    expected.processor_cash += target.amount


def dispute_payload(order, dispute_id: str, status: str, *, withdrawn: bool, reinstated: bool) -> dict:
    payment = order.payment_for_dispute
    transactions = []
    if withdrawn:
        transactions.append({"amount": -order.total, "fee": DISPUTE_FEE, "currency": CURRENCY})
    if reinstated:
        transactions.append({"amount": order.total, "fee": 0, "currency": CURRENCY})
    return {
        "id": dispute_id,
        "object": "dispute",
        "amount": order.total,
        "currency": CURRENCY,
        "charge": payment.processor_charge_id,
        "payment_intent": payment.processor_payment_id,
        "reason": "fraudulent",
        "status": status,
        "evidence_details": {"due_by": int((datetime.now(UTC) + timedelta(days=7)).timestamp())},
        "balance_transactions": transactions,
        "is_charge_refundable": False,
        "created": int(datetime.now(UTC).timestamp()),
        "metadata": {},
    }


def dispute(expected: Expected, pick: int, outcome: str) -> None:
    """A dispute over a whole order not refunded at all (a card network disputes the charge)."""
    candidates = [o for o in expected.orders if o.dispute_outcome is None]
    for order in candidates:
        order.refresh_from_db()
    candidates = [o for o in candidates if o.refunded_amount == 0]
    if not candidates:
        return
    order = candidates[pick % len(candidates)]
    order.dispute_outcome = outcome
    order.payment_for_dispute = order_payment(order)
    dispute_id = f"dp_prop_{next(_serial)}"
    now = datetime.now(UTC)
    opened = dispute_payload(order, dispute_id, "needs_response", withdrawn=True, reinstated=False)
    dispute_apply_snapshot(payload=opened, observed_at=now)
    tax = multiply(order.tax, Fraction(order.total, order.total)) if order.total else 0
    expected.merchant -= order.total - tax + DISPUTE_FEE
    expected.tax_payable -= tax
    expected.processor_cash -= order.total + DISPUTE_FEE
    if outcome == "open":
        return
    closed = dispute_payload(order, dispute_id, outcome, withdrawn=True, reinstated=outcome == "won")
    dispute_apply_snapshot(payload=closed, observed_at=now + timedelta(seconds=1))
    if outcome == "won":  # a manual payment: the organization's fee comes back with the amount
        expected.merchant += order.total - tax + DISPUTE_FEE
        expected.tax_payable += tax
        expected.processor_cash += order.total + DISPUTE_FEE


def order_payment(order):
    from billing.payments.models import Payment

    return Payment.objects.get(reference=order.reference, status="succeeded")


def wallet(expected: Expected, customers, actor, pick: int, amount: int) -> None:
    customer = customers[pick % len(customers)]
    held = expected.wallets[customer.pk]
    if amount < 0 and held + amount < 0:
        with pytest.raises(ServiceError):
            wallet_adjust(customer=customer, amount=amount, currency=CURRENCY, reason="too much", actor=actor)
        return
    wallet_adjust(customer=customer, amount=amount, currency=CURRENCY, reason="goodwill", actor=actor)
    expected.wallets[customer.pk] += amount
    expected.merchant -= amount


def adjust(org, expected: Expected, actor, amount: int) -> None:
    balance_adjust(organization=org, amount=amount, currency=CURRENCY, reason="correction", actor=actor)
    expected.merchant += amount


OPERATIONS = st.one_of(
    st.tuples(
        st.just("pay"),
        st.integers(min_value=50, max_value=200_000),
        st.sampled_from([0, 700, 2000]),
        st.booleans(),
    ),
    st.tuples(
        st.just("refund"),
        st.integers(min_value=0, max_value=50),
        st.sampled_from([Fraction(1), Fraction(1, 2), Fraction(1, 3), Fraction(7, 10), Fraction(2)]),
    ),
    st.tuples(st.just("refund_fails"), st.integers(min_value=0, max_value=50)),
    st.tuples(
        st.just("dispute"), st.integers(min_value=0, max_value=50), st.sampled_from(["won", "lost", "open"])
    ),
    st.tuples(
        st.just("wallet"),
        st.integers(min_value=0, max_value=3),
        st.integers(min_value=-30_000, max_value=30_000).filter(bool),
    ),
    st.tuples(st.just("adjust"), st.integers(min_value=-50_000, max_value=50_000).filter(bool)),
)


def check_invariants(org, customers, expected: Expected, platform_start: dict) -> None:
    assert reconcile() == []
    assert selectors.merchant_balance(org, CURRENCY) == expected.merchant
    assert -(platform_sum(Kind.PLATFORM_REVENUE) - platform_start[Kind.PLATFORM_REVENUE]) == (
        expected.platform_revenue
    )
    assert -(platform_sum(Kind.TAX_PAYABLE) - platform_start[Kind.TAX_PAYABLE]) == expected.tax_payable
    assert platform_sum(Kind.PROCESSOR_CASH) - platform_start[Kind.PROCESSOR_CASH] == expected.processor_cash
    for customer in customers:
        assert selectors.wallet_balance(customer, CURRENCY) == expected.wallets[customer.pk]
    for order in expected.orders:
        order.refresh_from_db()
        live = [r for r in Refund.objects.filter(order=order) if r.status != Refund.Status.FAILED]
        refunded = sum(r.amount for r in live)
        assert order.refunded_amount == refunded <= order.total
        # the tax given back is the order's tax in proportion to what was refunded, exactly
        assert sum(r.tax_amount for r in live) == multiply(order.tax, Fraction(refunded, order.total))
        wanted = (
            Order.Status.REFUNDED
            if refunded == order.total
            else Order.Status.PARTIALLY_REFUNDED
            if refunded
            else Order.Status.PAID
        )
        assert order.status == wanted


@pytest.mark.django_db(transaction=True)
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(operations=st.lists(OPERATIONS, min_size=1, max_size=14))
def test_random_money_movements_keep_the_ledger_true(make_org, operations):
    n = next(_serial)
    org = make_org(f"Property {n}")
    Organization.objects.filter(pk=org.pk).update(
        payment_processor="manual", platform_fee_bps=500, platform_fee_fixed=30, dispute_fee=DISPUTE_FEE
    )
    org.refresh_from_db()
    actor = User.objects.filter(email="finance@property.test").first() or User.objects.create_superuser(
        "finance@property.test", "pw"
    )
    customers = [org.customers.create(email=f"c{i}-{n}@example.com") for i in range(2)]
    platform_start = {
        k: platform_sum(k) for k in (Kind.PLATFORM_REVENUE, Kind.TAX_PAYABLE, Kind.PROCESSOR_CASH)
    }
    expected = Expected()
    for operation in operations:
        name, *args = operation
        if name == "pay":
            pay(org, customers[len(expected.orders) % 2], expected, *args)
            expected.orders[-1].dispute_outcome = None
        elif not expected.orders and name in ("refund", "refund_fails", "dispute"):
            continue
        elif name == "refund":
            refund(expected, actor, *args)
        elif name == "refund_fails":
            refund_fails(expected, *args)
        elif name == "dispute":
            dispute(expected, *args)
        elif name == "wallet":
            wallet(expected, customers, actor, *args)
        elif name == "adjust":
            adjust(org, expected, actor, *args)
        check_invariants(org, customers, expected, platform_start)
