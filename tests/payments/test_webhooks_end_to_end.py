"""localstripe pays, signs and posts its webhooks to our live server; we verify, store and handle them."""

import time

import pytest
from djstripe.models import WebhookEventTrigger

from billing.payments import services
from billing.payments.endpoints import webhook_endpoint_ensure
from billing.payments.models import ExternalEvent, Payment
from billing.payments.stripe_processor import StripeProcessor

pytestmark = [pytest.mark.localstripe, pytest.mark.django_db(transaction=True)]


def wait_for(predicate, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.1)
    return predicate()


@pytest.fixture
def wired(live_server, localstripe, stripe_client):
    endpoint = webhook_endpoint_ensure(base_url=live_server.url)
    localstripe.register_webhook("recur-e2e", endpoint.url, endpoint.secret)
    yield endpoint
    localstripe.unregister_webhook("recur-e2e")


def pay(stripe_client, customer, card: str, reference: str) -> Payment:
    processor = StripeProcessor()
    stripe_customer = services.customer_processor_sync(customer=customer, processor=processor)
    method = stripe_client.PaymentMethod.create(
        type="card", card={"number": card, "exp_month": 12, "exp_year": 2030, "cvc": "123"}
    )
    processor.payment_method_attach(
        processor_customer_id=stripe_customer,
        payment_method_id=method.id,
        idempotency_key=f"{reference}:attach",
    )
    payment = services.payment_create(
        organization=customer.organization,
        customer=customer,
        reference=reference,
        amount=2500,
        currency="usd",
        trigger="purchase",
        payment_method_id=method.id,
    )
    return services.payment_confirm(payment=payment, processor=processor)


def test_signed_webhooks_from_localstripe_are_verified_stored_and_handled(wired, stripe_client, customer):
    paid = pay(stripe_client, customer, "4242424242424242", "order:e2e-ok")
    declined = pay(stripe_client, customer, "4000000000000341", "order:e2e-declined")
    assert paid.status == Payment.Status.SUCCEEDED
    assert declined.status == Payment.Status.FAILED
    assert declined.decline_code == "card_declined"

    def handled():
        events = {e.type: e for e in ExternalEvent.objects.filter(status=ExternalEvent.Status.PROCESSED)}
        return (
            events if {"payment_intent.succeeded", "payment_intent.payment_failed"} <= set(events) else None
        )

    events = wait_for(handled)
    assert events, list(ExternalEvent.objects.values_list("type", "status", "error"))
    succeeded = events["payment_intent.succeeded"]
    assert succeeded.object["id"] == paid.processor_payment_id
    assert succeeded.delivery is not None and succeeded.delivery.valid
    assert events["payment_intent.payment_failed"].object["id"] == declined.processor_payment_id

    assert not WebhookEventTrigger.objects.filter(valid=False).exists()
    paid.refresh_from_db()
    declined.refresh_from_db()
    assert (paid.status, declined.status) == (Payment.Status.SUCCEEDED, Payment.Status.FAILED)
    assert paid.processor_state_at is not None
