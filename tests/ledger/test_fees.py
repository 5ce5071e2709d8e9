"""Processor fees: read from the Stripe balance transaction (localstripe, whose launcher
applies Stripe's standard 2.9% + 30 card fee), stored on the payment and posted; the
sweeper catches a fee whose task was lost."""

from datetime import timedelta

import pytest
import time_machine
from rest_framework.test import APIClient

from billing.ledger import selectors
from billing.ledger.fees import payment_fee_record, payment_fees_sweep
from billing.ledger.models import LedgerAccount, LedgerTransaction
from billing.ledger.reconciliation import reconcile
from billing.orders.models import Order
from billing.payments.models import Payment
from billing.payments.processor import ProcessorError
from core import clock

pytestmark = pytest.mark.localstripe

Kind = LedgerAccount.Kind
CARD_OK = "4242424242424242"


def stripe_fee(amount: int) -> int:
    return (amount * 290 + 5000) // 10000 + 30


def buy_with_card(stripe_client, org, product) -> Order:
    from billing.checkout import services as checkout_services

    checkout = checkout_services.checkout_create(
        organization=org, product_id=product.pk, customer_email="card@example.com"
    )
    pm = stripe_client.PaymentMethod.create(
        type="card", card={"number": CARD_OK, "exp_month": 12, "exp_year": 2030, "cvc": "123"}
    ).id
    response = APIClient().post(
        f"/v1/checkouts/client/{checkout.client_secret}/confirm", {"payment_method_id": pm}, format="json"
    )
    assert response.json()["status"] == "succeeded", response.json()
    return Order.objects.get(checkout=checkout)


def entries_of(ledger_tx) -> dict[str, int]:
    return {e.account.kind: e.amount for e in ledger_tx.entries.select_related("account")}


@pytest.mark.django_db(transaction=True)
def test_fee_of_a_card_payment_is_read_from_the_balance_transaction_and_posted(
    org, make_product, stripe_client
):
    product = make_product("Ebook", prices=[{"currency": "usd", "type": "fixed", "amount": 2000}])
    order = buy_with_card(stripe_client, org, product)

    payment = Payment.objects.get()
    fee = stripe_fee(2000)  # 88
    assert (payment.fee, payment.net) == (fee, 2000 - fee)
    assert payment.balance_transaction_id.startswith("txn_")
    fee_tx = LedgerTransaction.objects.get(type="processor_fee")
    assert (fee_tx.payment_id, fee_tx.organization_id) == (payment.pk, org.pk)
    assert entries_of(fee_tx) == {Kind.PROCESSOR_FEES: fee, Kind.PROCESSOR_CASH: -fee}
    # The merchant is not charged: its balance is the order's share, fee or no fee.
    assert selectors.merchant_balance(org, "usd") == order.total - order.tax - order.platform_fee
    assert selectors.account_balance(LedgerAccount.objects.get(kind=Kind.PROCESSOR_CASH)) == 2000 - fee
    assert reconcile() == []

    # Running it again (a duplicate task, the sweeper) changes nothing.
    assert payment_fee_record(payment=payment) == fee_tx
    later = clock.now() + timedelta(minutes=5)
    with time_machine.travel(later, tick=False):
        assert payment_fees_sweep() == 0
    assert LedgerTransaction.objects.filter(type="processor_fee").count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_lost_fee_task_is_caught_up_by_the_sweeper(org, make_product, stripe_client, monkeypatch):
    from billing.ledger import tasks

    monkeypatch.setattr(tasks.record_payment_fee, "delay", lambda *args, **kwargs: None)  # message lost
    product = make_product("Ebook", prices=[{"currency": "usd", "type": "fixed", "amount": 5000}])
    buy_with_card(stripe_client, org, product)
    payment = Payment.objects.get()
    assert payment.status == "succeeded" and payment.fee is None
    assert not LedgerTransaction.objects.filter(type="processor_fee").exists()

    assert payment_fees_sweep() == 0  # too fresh: its own task may still be on the way

    class Down:
        def balance_transaction_for_charge(self, *, charge_id):
            raise ProcessorError("Stripe is unreachable", retryable=True)

    with time_machine.travel(clock.now() + timedelta(minutes=2), tick=False):
        touched_before = Payment.objects.get().updated_at
        assert payment_fees_sweep(processor=Down()) == 0  # logged, nothing stored, moved back
        assert Payment.objects.get().updated_at > touched_before
        assert Payment.objects.get().fee is None
    with time_machine.travel(clock.now() + timedelta(minutes=4), tick=False):
        assert payment_fees_sweep() == 1
        assert payment_fees_sweep() == 0
    payment.refresh_from_db()
    assert payment.fee == stripe_fee(5000)
    assert LedgerTransaction.objects.filter(type="processor_fee", payment=payment).count() == 1
    assert reconcile() == []


@pytest.mark.django_db(transaction=True)
def test_manual_payments_have_no_processor_fee(org, make_product):
    from billing.checkout import services as checkout_services
    from billing.ledger.tasks import sweep_payment_fees

    org.payment_processor = "manual"
    org.save(update_fields=["payment_processor"])
    product = make_product("Ebook")
    checkout = checkout_services.checkout_create(
        organization=org, product_id=product.pk, customer_email="m@example.com"
    )
    checkout_services.checkout_confirm(checkout=checkout, payment_method_id="pm_manual")
    payment = Payment.objects.get()
    assert (payment.status, payment.processor, payment.fee) == ("succeeded", "manual", None)
    assert payment_fee_record(payment=payment) is None
    with time_machine.travel(clock.now() + timedelta(minutes=5), tick=False):
        assert sweep_payment_fees() == 0
    assert not LedgerTransaction.objects.filter(type="processor_fee").exists()


@pytest.mark.django_db
def test_fee_record_refuses_to_run_inside_a_transaction(org, make_payment):
    payment = make_payment()
    with pytest.raises(RuntimeError, match="outside transactions"):
        payment_fee_record(payment=payment)


def test_fee_sweeper_is_scheduled_every_minute():
    from core.schedules import SCHEDULES

    (schedule,) = [s for s in SCHEDULES if s.task == "ledger.sweep_payment_fees"]
    assert schedule.every == timedelta(minutes=1)
