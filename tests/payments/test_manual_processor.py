"""ManualProcessor: operator-recorded payments, deterministic ids, no payouts."""

import pytest

from billing.payments.manual import ManualProcessor
from billing.payments.processor import ProcessorError


@pytest.fixture
def processor():
    return ManualProcessor()


def pay(processor, idempotency_key):
    return processor.payment_intent_create(
        amount=2000,
        currency="usd",
        processor_customer_id=None,
        payment_method_id=None,
        off_session=False,
        confirm=True,
        idempotency_key=idempotency_key,
        metadata={},
    )


def test_payment_succeeds_with_an_id_derived_from_the_key(processor):
    first = pay(processor, "order:1:attempt:1")
    retried = pay(processor, "order:1:attempt:1")
    other = pay(processor, "order:1:attempt:2")

    assert first.status == "succeeded"
    assert first.payment_intent_id.startswith("manual_")
    assert retried == first
    assert other.payment_intent_id != first.payment_intent_id
    assert processor.payment_intent_retrieve(payment_intent_id=first.payment_intent_id) == first
    assert (
        processor.payment_intent_confirm(
            payment_intent_id=first.payment_intent_id, payment_method_id=None, idempotency_key="c"
        )
        == first
    )


def test_retrieving_a_foreign_id_fails(processor):
    with pytest.raises(ProcessorError) as excinfo:
        processor.payment_intent_retrieve(payment_intent_id="pi_123")
    assert excinfo.value.retryable is False


def test_refunds_succeed_with_deterministic_ids(processor):
    payment = pay(processor, "order:1:attempt:1")

    refund = processor.refund_create(
        payment_intent_id=payment.payment_intent_id,
        amount=500,
        reason="",
        idempotency_key="refund:1",
        metadata={},
    )
    retried = processor.refund_create(
        payment_intent_id=payment.payment_intent_id,
        amount=500,
        reason="",
        idempotency_key="refund:1",
        metadata={},
    )

    assert refund.status == "succeeded"
    assert refund.amount == 500
    assert refund.refund_id.startswith("manual_re_")
    assert retried == refund


def test_full_refund_needs_an_amount(processor):
    with pytest.raises(ProcessorError) as excinfo:
        processor.refund_create(
            payment_intent_id="manual_pi_x", amount=None, reason="", idempotency_key="refund:2", metadata={}
        )
    assert (excinfo.value.code, excinfo.value.retryable) == ("amount_required", False)


def test_customers_and_payment_methods(processor):
    customer_id = processor.customer_upsert(
        processor_customer_id=None, email="a@example.com", name="A", metadata={}, idempotency_key="customer:1"
    )

    assert customer_id.startswith("manual_cus_")
    assert (
        processor.customer_upsert(
            processor_customer_id=None,
            email="a@example.com",
            name="A",
            metadata={},
            idempotency_key="customer:1",
        )
        == customer_id
    )
    assert (
        processor.customer_upsert(
            processor_customer_id=customer_id,
            email="b@example.com",
            name="B",
            metadata={},
            idempotency_key="u",
        )
        == customer_id
    )
    info = processor.payment_method_attach(
        processor_customer_id=customer_id, payment_method_id="cash", idempotency_key="pm:1"
    )
    assert info.id == "cash"
    assert processor.payment_method_detach(payment_method_id="cash", idempotency_key="pm:2") is None


def test_no_processor_fee(processor):
    payment = pay(processor, "order:1:attempt:1")
    assert processor.balance_transaction_for_charge(charge_id=payment.charge_id) is None


@pytest.mark.parametrize(
    "call",
    [
        lambda p: p.connected_account_create(country="US", email="s@example.com", idempotency_key="a"),
        lambda p: p.connected_account_retrieve(account_id="acct_1"),
        lambda p: p.transfer_create(
            amount=1, currency="usd", destination="acct_1", idempotency_key="t", metadata={}
        ),
        lambda p: p.payout_create(
            amount=1, currency="usd", connected_account_id="acct_1", idempotency_key="p", metadata={}
        ),
    ],
)
def test_connect_is_refused(processor, call):
    with pytest.raises(ProcessorError, match="cannot pay out") as excinfo:
        call(processor)
    assert excinfo.value.retryable is False


def test_satisfies_the_interface(processor):
    from billing.payments.processor import PaymentProcessor
    from billing.payments.stripe_processor import StripeProcessor

    def public(cls):
        return {n for n in vars(cls) if not n.startswith("_")}

    protocol = public(PaymentProcessor) - {"name"}
    assert protocol <= public(ManualProcessor)
    assert protocol <= public(StripeProcessor)
    assert (ManualProcessor.name, StripeProcessor.name) == ("manual", "stripe")
