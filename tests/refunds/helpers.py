"""Shared set-up for the refund tests: paid orders (through localstripe, the manual
processor, or settled without a processor call), ledger readings, signed refund events."""

import uuid

from rest_framework.test import APIClient

from billing.checkout import services as checkout_services
from billing.ledger.models import LedgerAccount, LedgerTransaction
from billing.ledger.selectors import account_balance, merchant_balance
from billing.ledger.services import account_for
from billing.orders.models import Order
from billing.orders.services import Line, order_create
from billing.payments import services as payment_services
from billing.payments.models import Payment
from billing.refunds.models import Refund
from core import clock
from tests.payments import stripe_events

Kind = LedgerAccount.Kind
SUCCEEDS = "4242424242424242"
GB = {"country": "GB"}  # 20% VAT, added to the price


def card(stripe_client) -> str:
    return stripe_client.PaymentMethod.create(
        type="card", card={"number": SUCCEEDS, "exp_month": 12, "exp_year": 2030, "cvc": "123"}
    ).id


def buy(org, product, payment_method_id: str = "pm_manual", **options) -> Order:
    """A checkout confirmed through the public API: a paid order (localstripe or manual)."""
    options.setdefault("billing_address", GB)
    checkout = checkout_services.checkout_create(
        organization=org, product_id=product.pk, customer_email="buyer@example.com", **options
    )
    response = APIClient().post(
        f"/v1/checkouts/client/{checkout.client_secret}/confirm",
        {"payment_method_id": payment_method_id},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "succeeded", response.json()
    return Order.objects.get(checkout=checkout)


def settled_order(org, customer, amount: int = 2000, tax: int = 400) -> Order:
    """A paid order whose payment settled without any processor call (bad-input tests)."""
    order = order_create(
        organization=org,
        customer=customer,
        billing_reason="purchase",
        currency="usd",
        lines=[Line(label="E-book", amount=amount)],
        tax=tax,
        tax_rate_bps=2000,
    )
    payment = payment_services.payment_create(
        organization=org,
        customer=customer,
        reference=order.reference,
        amount=order.total,
        currency="usd",
        trigger="purchase",
    )
    payment_services.payment_apply_snapshot(
        payment=payment,
        status="succeeded",
        observed_at=clock.now(),
        facts={"processor_payment_id": f"pi_{uuid.uuid4().hex[:24]}"},
    )
    order.refresh_from_db()
    assert order.status == "paid"
    return order


def settled_payment(order: Order) -> Payment:
    return Payment.objects.get(
        reference__in=[order.reference, f"checkout:{order.checkout_id}"], status="succeeded"
    )


def ledger(org, currency: str = "usd") -> dict[str, int]:
    """Balances as owed/held (positive): merchant balance, tax payable, processor cash,
    platform revenue."""
    return {
        "merchant": merchant_balance(org, currency),
        "tax_payable": -account_balance(account_for(Kind.TAX_PAYABLE, currency=currency)),
        "processor_cash": account_balance(account_for(Kind.PROCESSOR_CASH, currency=currency)),
        "platform_revenue": -account_balance(account_for(Kind.PLATFORM_REVENUE, currency=currency)),
    }


def nothing_changed_snapshot(order: Order) -> tuple:
    order.refresh_from_db()
    return (
        Refund.objects.count(),
        LedgerTransaction.objects.count(),
        order.status,
        order.refunded_amount,
        tuple(Payment.objects.order_by("pk").values_list("amount_refunded", flat=True)),
    )


def refund_object(refund: Refund | None = None, *, payment: Payment | None = None, **fields) -> dict:
    """A Stripe Refund object: ours (metadata names it) or one made at the processor."""
    payment = payment or refund.payment
    obj = {
        "id": (refund.processor_refund_id if refund else "") or f"re_{uuid.uuid4().hex[:24]}",
        "object": "refund",
        "amount": refund.card_amount if refund else 0,
        "currency": payment.currency,
        "charge": payment.processor_charge_id or None,
        "payment_intent": payment.processor_payment_id,
        "status": "succeeded",
        "reason": None,
        "failure_reason": None,
        "metadata": {"recur_refund_id": str(refund.pk)} if refund else {},
        "created": int(clock.now().timestamp()),
    }
    obj.update(fields)
    return obj


def post_event(client, endpoint, event_type: str, obj: dict, **kwargs):
    payload = stripe_events.event(event_type, obj, **kwargs)
    response = stripe_events.post(client, endpoint, payload)
    assert response.status_code == 200, response.content
    return payload
