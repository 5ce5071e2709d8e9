"""Bad deliveries are answered 4xx, stored as rejected, logged, and change nothing."""

import json
import time
import uuid

import pytest
from djstripe.models import WebhookEventTrigger

from billing.payments.models import ExternalEvent, Payment
from tests.payments import stripe_events

pytestmark = pytest.mark.django_db


@pytest.fixture
def paid_event(make_payment):
    payment = make_payment()
    return payment, stripe_events.event("payment_intent.succeeded", stripe_events.payment_intent(payment))


def assert_nothing_happened(payment):
    assert not ExternalEvent.objects.exists()
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PENDING


def test_missing_signature(client, webhook_endpoint, paid_event, caplog):
    payment, payload = paid_event
    response = client.post(
        f"/stripe/webhook/{webhook_endpoint.djstripe_uuid}/",
        json.dumps(payload),
        content_type="application/json",
    )
    assert response.status_code == 400
    trigger = WebhookEventTrigger.objects.get()
    assert (trigger.valid, trigger.exception) == (False, "missing Stripe-Signature header")
    assert "rejected Stripe webhook" in caplog.text
    assert_nothing_happened(payment)


def test_wrong_signature(client, webhook_endpoint, paid_event):
    payment, payload = paid_event
    response = stripe_events.post(client, webhook_endpoint, payload, secret="whsec_someone_else")
    assert response.status_code == 400
    trigger = WebhookEventTrigger.objects.get()
    assert not trigger.valid
    assert "signature" in trigger.exception
    assert_nothing_happened(payment)


def test_timestamp_older_than_tolerance(client, webhook_endpoint, paid_event):
    payment, payload = paid_event
    response = stripe_events.post(client, webhook_endpoint, payload, timestamp=int(time.time()) - 301)
    assert response.status_code == 400
    assert not WebhookEventTrigger.objects.get().valid
    assert_nothing_happened(payment)


def test_timestamp_within_tolerance_passes(client, webhook_endpoint, paid_event):
    payment, payload = paid_event
    response = stripe_events.post(client, webhook_endpoint, payload, timestamp=int(time.time()) - 290)
    assert response.status_code == 200
    payment.refresh_from_db()
    assert payment.status == Payment.Status.SUCCEEDED


def test_body_that_is_not_json(client, webhook_endpoint, make_payment):
    payment = make_payment()
    response = stripe_events.post(client, webhook_endpoint, b"this is not json{")
    assert response.status_code == 400
    trigger = WebhookEventTrigger.objects.get()
    assert not trigger.valid and trigger.body == "this is not json{"
    assert_nothing_happened(payment)


def test_unknown_endpoint(client, webhook_endpoint, paid_event):
    payment, payload = paid_event
    body = json.dumps(payload).encode()
    response = client.post(
        f"/stripe/webhook/{uuid.uuid4()}/",
        body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=stripe_events.signature(body),
    )
    assert response.status_code == 404
    trigger = WebhookEventTrigger.objects.get()
    assert trigger.webhook_endpoint is None and not trigger.valid
    assert_nothing_happened(payment)


def test_debug_secret_override_header_is_refused(client, webhook_endpoint, paid_event, settings):
    settings.DEBUG = True
    payment, payload = paid_event
    response = stripe_events.post(
        client,
        webhook_endpoint,
        payload,
        secret="whsec_attacker",
        HTTP_X_DJSTRIPE_WEBHOOK_SECRET="whsec_attacker",
    )
    assert response.status_code == 400
    assert_nothing_happened(payment)


def test_unhandled_event_type_is_stored_and_ignored(client, webhook_endpoint):
    payload = stripe_events.event("customer.discount.created", {"id": "di_1", "object": "discount"})
    response = stripe_events.post(client, webhook_endpoint, payload)
    assert response.status_code == 200
    event = ExternalEvent.objects.get()
    assert (event.status, event.type, event.attempts) == (
        ExternalEvent.Status.IGNORED,
        "customer.discount.created",
        0,
    )
    assert WebhookEventTrigger.objects.get().valid
