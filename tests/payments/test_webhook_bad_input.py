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


def assert_rejected(response, *, status=400, valid=False, reason=""):
    assert response.status_code == status
    trigger = WebhookEventTrigger.objects.get()
    assert trigger.valid is valid and not trigger.processed
    assert reason in trigger.exception
    assert not ExternalEvent.objects.exists()
    return trigger


@pytest.mark.parametrize("body", [b"null", b"5", b"[]", b'[{"id": "evt_1"}]', b'"evt"', b"true", b"{}"])
@pytest.mark.parametrize("signed", [True, False])
def test_body_that_is_not_an_event_object(client, webhook_endpoint, body, signed, caplog):
    if signed:
        response = stripe_events.post(client, webhook_endpoint, body)
    else:
        response = client.post(
            f"/stripe/webhook/{webhook_endpoint.djstripe_uuid}/", body, content_type="application/json"
        )
    assert_rejected(response)
    assert "rejected Stripe webhook" in caplog.text


@pytest.mark.parametrize(
    "body",
    [b'{"id": "evt_\x00"}', b"\x00", b'{"id": "evt_1"}\x00', b"\xff\xfe not utf-8"],
    ids=["nul-in-string", "nul-alone", "nul-after", "not-utf8"],
)
def test_nul_bytes_and_undecodable_bodies_are_stored_rejections(client, webhook_endpoint, body):
    trigger = assert_rejected(stripe_events.post(client, webhook_endpoint, body))
    assert "\x00" not in trigger.body


def test_deeply_nested_body_is_rejected(client, webhook_endpoint):
    body = b'{"id": "evt_1", "data": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    assert_rejected(stripe_events.post(client, webhook_endpoint, body), reason="too_deeply_nested")


def test_body_over_the_upload_limit_is_413(client, webhook_endpoint, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    payload = stripe_events.event("customer.updated", {"id": "cus_1", "object": "customer", "x": "y" * 2000})
    trigger = assert_rejected(stripe_events.post(client, webhook_endpoint, payload), status=413)
    assert trigger.body == ""


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"created": "yesterday"}, "created"),
        ({"created": -1}, "created"),
        ({"created": 10**20}, "created"),
        ({"created": 1.5}, "created"),
        ({"created": True}, "created"),
        ({"created": None}, "created"),
        ({"id": "evt_" + "x" * 300}, "id"),
        ({"id": ""}, "id"),
        ({"id": 12345}, "id"),
        ({"id": None}, "id"),
        ({"type": "t" * 101}, "type"),
        ({"type": 7}, "type"),
        ({"livemode": "no"}, "livemode"),
        ({"data": None}, "data.object"),
        ({"data": {"object": [1]}}, "data.object"),
    ],
)
def test_signed_but_malformed_event_is_refused_once_not_failed_forever(
    client, webhook_endpoint, paid_event, change, reason, caplog
):
    payment, payload = paid_event
    payload |= change
    response = stripe_events.post(client, webhook_endpoint, payload)
    trigger = assert_rejected(response, valid=True, reason="malformed event")
    assert reason in trigger.exception
    assert "malformed event" in caplog.text
    assert_nothing_happened(payment)
    # Stripe delivers it again: refused the same way, still nothing recorded.
    assert stripe_events.post(client, webhook_endpoint, payload).status_code == 400
    assert not ExternalEvent.objects.exists()


@pytest.mark.parametrize(
    "change", [{"id": "evt_\u0000"}, {"data": {"object": {"id": "pi_1", "metadata": {"k\u0000": "v"}}}}]
)
def test_escaped_nul_anywhere_in_the_event_is_a_stored_rejection(
    client, webhook_endpoint, paid_event, change
):
    payment, payload = paid_event
    trigger = assert_rejected(stripe_events.post(client, webhook_endpoint, payload | change), reason="nul")
    assert "\x00" not in trigger.body
    assert_nothing_happened(payment)


def test_nul_in_a_header_is_stored_without_it(client, webhook_endpoint, paid_event):
    payment, payload = paid_event
    response = stripe_events.post(client, webhook_endpoint, payload, HTTP_X_PROBE="a\x00b")
    assert response.status_code == 200
    assert WebhookEventTrigger.objects.get().headers["X-Probe"] == "a\ufffdb"
    payment.refresh_from_db()
    assert payment.status == Payment.Status.SUCCEEDED


def test_malformed_signature_header_is_a_stored_rejection(client, webhook_endpoint, paid_event):
    payment, payload = paid_event
    for header in ("t=abc,v1=zz", "garbage", "", "t=,v1="):
        WebhookEventTrigger.objects.all().delete()
        response = client.post(
            f"/stripe/webhook/{webhook_endpoint.djstripe_uuid}/",
            json.dumps(payload),
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE=header,
        )
        assert_rejected(response)
    assert_nothing_happened(payment)


def test_a_well_formed_event_after_the_rejections_is_recorded(client, webhook_endpoint, paid_event):
    payment, payload = paid_event
    assert stripe_events.post(client, webhook_endpoint, {**payload, "created": "soon"}).status_code == 400
    assert stripe_events.post(client, webhook_endpoint, payload).status_code == 200
    assert ExternalEvent.objects.get().event_id == payload["id"]
    payment.refresh_from_db()
    assert payment.status == Payment.Status.SUCCEEDED
