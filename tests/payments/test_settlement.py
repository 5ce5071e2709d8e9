"""Settle from the processor when webhooks are lost (localstripe, no webhook registered):
the sweeper retrieves known intents, finds unknown ones by our metadata, and sends the
create of an attempt that provably never reached Stripe, with the same key, once."""

import urllib.request
from datetime import timedelta
from urllib.parse import urlencode

import pytest
import time_machine
from django.conf import settings

from billing.orders.models import Order
from billing.orders.services import Line, order_create
from billing.payments import services, settlement
from billing.payments.models import Payment
from billing.payments.processor import ProcessorError
from billing.payments.stripe_processor import StripeProcessor
from billing.subscriptions import dunning
from core import clock

pytestmark = [pytest.mark.localstripe, pytest.mark.django_db(transaction=True)]

S = Payment.Status
CARD_OK = "4242424242424242"
CARD_3DS = "4000002500003155"


@pytest.fixture
def card_customer(stripe_client, customer):
    def attach(number: str = CARD_OK):
        stripe_customer = services.customer_processor_sync(customer=customer, processor=StripeProcessor())
        method = stripe_client.PaymentMethod.create(
            type="card", card={"number": number, "exp_month": 12, "exp_year": 2030, "cvc": "123"}
        )
        stripe_client.PaymentMethod.attach(method.id, customer=stripe_customer)
        customer.default_payment_method_id = method.id
        customer.save(update_fields=["default_payment_method_id"])
        return customer

    return attach


def authenticate(payment) -> None:
    """The customer completes 3-D Secure (localstripe's stand-in for Stripe.js)."""
    path = f"/v1/payment_intents/{payment.processor_payment_id}/_authenticate"
    body = urlencode({"client_secret": payment.client_secret, "success": "true"}).encode()
    request = urllib.request.Request(settings.STRIPE_API_HOST + path, data=body, method="POST")
    request.add_header("Authorization", f"Bearer {settings.STRIPE_TEST_SECRET_KEY}")
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200


def due_order(customer) -> Order:
    return order_create(
        organization=customer.organization,
        customer=customer,
        billing_reason="purchase",
        currency="usd",
        lines=[Line(label="E-book", amount=2500)],
    )


def intents_for(stripe_client, reference: str) -> list:
    intents = stripe_client.PaymentIntent.list(limit=100).data
    return [pi for pi in intents if (pi.metadata or {}).get("recur_reference") == reference]


def sweep_later(minutes: float = 6):
    with time_machine.travel(clock.now() + timedelta(minutes=minutes), tick=False):
        return settlement.payments_settle_stale()


def test_a_3ds_completion_without_webhook_settles_the_order(stripe_client, card_customer):
    customer = card_customer(CARD_3DS)
    order = due_order(customer)
    payment = dunning.order_payment_collect(order_id=order.pk, trigger="customer_retry")
    assert payment.status == S.REQUIRES_ACTION
    authenticate(payment)
    assert settlement.payments_settle_stale().checked == 0  # not overdue yet: webhooks may come

    result = sweep_later()
    assert (result.checked, result.settled, result.resubmitted) == (1, 1, 0)
    order.refresh_from_db()
    payment.refresh_from_db()
    assert (payment.status, order.status) == (S.SUCCEEDED, Order.Status.PAID)
    assert sweep_later(60).checked == 0  # converged
    assert len(intents_for(stripe_client, order.reference)) == 1


def test_an_intent_created_but_never_recorded_is_found_by_metadata(stripe_client, card_customer):
    """The worker died after the create call returned: Recur never learnt the intent's id."""
    customer = card_customer()
    order = due_order(customer)
    payment = services.payment_create(
        organization=order.organization,
        customer=customer,
        reference=order.reference,
        amount=order.due,
        currency="usd",
        trigger="cycle",
        payment_method_id=customer.default_payment_method_id,
        off_session=True,
    )
    assert services.payment_submission_claim(payment=payment)
    StripeProcessor().payment_intent_create(
        amount=payment.amount,
        currency="usd",
        processor_customer_id=customer.stripe_customer_id,
        payment_method_id=payment.payment_method_id,
        off_session=True,
        confirm=True,
        idempotency_key=payment.idempotency_key,
        metadata={"recur_payment_id": str(payment.pk), "recur_reference": payment.reference},
    )
    # A redelivered task does not send the create again: the attempt is already submitted.
    assert dunning.order_payment_collect(order_id=order.pk).status == S.PENDING
    assert len(intents_for(stripe_client, order.reference)) == 1

    result = sweep_later()
    assert (result.settled, result.resubmitted) == (1, 0)
    payment.refresh_from_db()
    order.refresh_from_db()
    assert payment.status == S.SUCCEEDED and payment.processor_payment_id.startswith("pi_")
    assert order.status == Order.Status.PAID
    assert len(intents_for(stripe_client, order.reference)) == 1
    assert sweep_later(60).checked == 0


def test_a_create_that_timed_out_is_sent_again_once_with_the_same_key(
    stripe_client, card_customer, monkeypatch
):
    customer = card_customer()
    order = due_order(customer)
    keys = []
    real_create = StripeProcessor.payment_intent_create

    def timing_out(self, **kwargs):
        keys.append(kwargs["idempotency_key"])
        raise ProcessorError("Stripe: read timed out", retryable=True, code="api_connection_error")

    monkeypatch.setattr(StripeProcessor, "payment_intent_create", timing_out)
    payment = dunning.order_payment_collect(order_id=order.pk)
    assert payment.status == S.PENDING and "unreachable" in payment.note
    assert dunning.order_payment_collect(order_id=order.pk).pk == payment.pk  # reused, not re-sent
    assert len(keys) == 1

    def recording(self, **kwargs):
        keys.append(kwargs["idempotency_key"])
        return real_create(self, **kwargs)

    monkeypatch.setattr(StripeProcessor, "payment_intent_create", recording)
    result = sweep_later()
    assert (result.checked, result.settled, result.resubmitted) == (1, 1, 1)
    assert keys == [payment.idempotency_key] * 2
    order.refresh_from_db()
    assert order.status == Order.Status.PAID
    assert len(intents_for(stripe_client, order.reference)) == 1
    assert sweep_later(60).checked == 0
    assert len(keys) == 2


def test_an_unreachable_processor_delays_settlement_without_losing_it(
    stripe_client, card_customer, monkeypatch
):
    customer = card_customer(CARD_3DS)
    order = due_order(customer)
    payment = dunning.order_payment_collect(order_id=order.pk, trigger="customer_retry")
    authenticate(payment)

    def down(self, **kwargs):
        raise ProcessorError("Stripe: 503", retryable=True)

    with monkeypatch.context() as patched:
        patched.setattr(StripeProcessor, "payment_intent_retrieve", down)
        assert sweep_later().errors == 1
    payment.refresh_from_db()
    assert payment.status == S.REQUIRES_ACTION and payment.settle_check_at is not None
    assert sweep_later(7).checked == 0  # leased: asked again after the back-off, not every run
    assert sweep_later(12).settled == 1
    order.refresh_from_db()
    assert order.status == Order.Status.PAID


def test_manual_payments_and_fresh_payments_are_left_alone(org, customer, make_payment):
    fresh = make_payment(reference="order:fresh")
    assert settlement.payments_settle_stale().checked == 0
    Payment.objects.filter(pk=fresh.pk).update(processor=Payment.Processor.MANUAL)
    assert sweep_later().checked == 0
    assert settlement.payments_unsettled().count() == 0


def test_the_beat_task_runs_the_sweeper(make_payment):
    from billing.payments.tasks import settle_stale_payments
    from core.schedules import SCHEDULES

    assert any(s.task == "payments.settle_stale_payments" for s in SCHEDULES)
    make_payment(reference="order:quiet")
    assert settle_stale_payments.apply().result == 0
