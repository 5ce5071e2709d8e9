"""stripe-python against the session's localstripe server (no database).

These pin down what localstripe 1.15 actually does, so payment code and its tests can
rely on it (and notice when an upgrade changes it).
"""

from __future__ import annotations

import http.server
import json
import queue
import threading
import time
import uuid

import pytest

pytestmark = pytest.mark.localstripe

AMOUNT = 2000
CURRENCY = "usd"
CARD_OK = "4242424242424242"
CARD_DECLINED_ON_ATTACH = "4000000000000002"  # localstripe declines it when attaching
CARD_DECLINED_ON_CHARGE = "4000000000000341"  # attaches fine, every charge declines


def make_customer(stripe):
    return stripe.Customer.create(email=f"{uuid.uuid4().hex[:8]}@example.com")


def make_card(stripe, number):
    # localstripe takes raw numbers; all four keys are required, cvc a 3-digit string.
    return stripe.PaymentMethod.create(
        type="card", card={"number": number, "exp_month": 12, "exp_year": 2030, "cvc": "123"}
    )


def saved_card(stripe, number=CARD_OK):
    customer = make_customer(stripe)
    payment_method = make_card(stripe, number)
    stripe.PaymentMethod.attach(payment_method.id, customer=customer.id)
    return customer, payment_method


def charge_id_of(payment_intent):
    # Real Stripe returns an id unless expanded; localstripe always embeds the Charge.
    charge = payment_intent.latest_charge
    return charge if isinstance(charge, str) else charge.id


def test_card_payment_method_attaches_to_customer(stripe_client):
    customer, payment_method = saved_card(stripe_client)

    assert payment_method.id.startswith("pm_")
    assert payment_method.card.last4 == "4242"
    assert stripe_client.PaymentMethod.retrieve(payment_method.id).customer == customer.id
    listed = stripe_client.PaymentMethod.list(customer=customer.id, type="card")
    assert [pm.id for pm in listed.data] == [payment_method.id]


def test_payment_intent_with_4242_succeeds(stripe_client):
    customer, payment_method = saved_card(stripe_client)

    intent = stripe_client.PaymentIntent.create(
        amount=AMOUNT,
        currency=CURRENCY,
        customer=customer.id,
        payment_method=payment_method.id,
        payment_method_types=["card"],
        confirm=True,
    )

    assert intent.status == "succeeded"
    assert intent.last_payment_error is None
    charge = stripe_client.Charge.retrieve(charge_id_of(intent))
    assert charge.status == "succeeded"
    assert charge.paid is True
    assert charge.amount == AMOUNT
    assert charge.currency == CURRENCY
    assert charge.payment_intent == intent.id
    assert charge.customer == customer.id
    assert charge.balance_transaction.startswith("txn_")


def test_create_then_confirm_in_two_steps(stripe_client):
    customer, payment_method = saved_card(stripe_client)
    intent = stripe_client.PaymentIntent.create(
        amount=AMOUNT, currency=CURRENCY, customer=customer.id, payment_method=payment_method.id
    )
    assert intent.status == "requires_confirmation"

    intent = stripe_client.PaymentIntent.confirm(intent.id)

    assert intent.status == "succeeded"


def test_4000000000000002_is_declined_when_attached(stripe_client):
    customer = make_customer(stripe_client)
    payment_method = make_card(stripe_client, CARD_DECLINED_ON_ATTACH)

    with pytest.raises(stripe_client.CardError) as excinfo:
        stripe_client.PaymentMethod.attach(payment_method.id, customer=customer.id)

    error = excinfo.value
    assert error.http_status == 402
    assert error.code == "card_declined"
    body = error.json_body["error"]
    # localstripe sets no decline_code anywhere (real Stripe: "generic_decline"),
    # and labels the error type invalid_request_error instead of card_error.
    assert "decline_code" not in body
    assert body["type"] == "invalid_request_error"


def test_declined_charge_leaves_intent_requiring_payment_method(stripe_client):
    customer, payment_method = saved_card(stripe_client, CARD_DECLINED_ON_CHARGE)

    with pytest.raises(stripe_client.CardError) as excinfo:
        stripe_client.PaymentIntent.create(
            amount=AMOUNT,
            currency=CURRENCY,
            customer=customer.id,
            payment_method=payment_method.id,
            confirm=True,
        )

    error = excinfo.value
    assert error.http_status == 402
    assert error.code == "card_declined"
    body = error.json_body["error"]
    # Unlike Stripe, the error carries the charge id but not the payment_intent.
    assert "payment_intent" not in body
    charge = stripe_client.Charge.retrieve(body["charge"])
    assert charge.status == "failed"
    assert charge.paid is False
    assert charge.failure_code == "card_declined"

    intent = stripe_client.PaymentIntent.retrieve(charge.payment_intent)
    assert intent.status == "requires_payment_method"
    assert intent.last_payment_error.code == "card_declined"
    assert intent.last_payment_error.charge == charge.id
    assert "decline_code" not in intent.last_payment_error


def test_quirk_4000000000000002_charges_fine_when_never_attached(stripe_client):
    """localstripe only declines 4000000000000002 on attach: use 4000000000000341 for
    charge-time declines."""
    payment_method = make_card(stripe_client, CARD_DECLINED_ON_ATTACH)

    intent = stripe_client.PaymentIntent.create(
        amount=AMOUNT, currency=CURRENCY, payment_method=payment_method.id, confirm=True
    )

    assert intent.status == "succeeded"


def test_off_session_confirm_with_saved_card_succeeds(stripe_client):
    customer, payment_method = saved_card(stripe_client)

    intent = stripe_client.PaymentIntent.create(
        amount=AMOUNT,
        currency=CURRENCY,
        customer=customer.id,
        payment_method=payment_method.id,
        off_session=True,
        confirm=True,
    )

    assert intent.status == "succeeded"
    assert stripe_client.Charge.retrieve(charge_id_of(intent)).status == "succeeded"


# No idempotency test: localstripe ignores the Idempotency-Key header; two creates with
# the same key return two different PaymentIntents.


class _Recorder(http.server.BaseHTTPRequestHandler):
    received: queue.Queue  # set on a per-test subclass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.received.put((self.path, dict(self.headers), body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format, *args):
        pass


@pytest.fixture
def webhook_receiver():
    received: queue.Queue = queue.Queue()
    handler = type("Recorder", (_Recorder,), {"received": received})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/stripe/webhook", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def wait_for_event(received, event_type, object_id, timeout=10.0):
    deadline = time.monotonic() + timeout
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            path, headers, body = received.get(timeout=remaining)
        except queue.Empty:
            break
        event = json.loads(body)
        if event["type"] == event_type and event["data"]["object"]["id"] == object_id:
            return path, headers, body, event
    raise AssertionError(f"no {event_type} for {object_id} within {timeout} s")


def test_payment_intent_succeeded_webhook_is_signed(stripe_client, localstripe, webhook_receiver):
    url, received = webhook_receiver
    secret = "whsec_" + uuid.uuid4().hex
    webhook_id = "test-" + uuid.uuid4().hex[:8]
    localstripe.register_webhook(webhook_id, url, secret, events=["payment_intent.succeeded"])
    try:
        customer, payment_method = saved_card(stripe_client)
        intent = stripe_client.PaymentIntent.create(
            amount=AMOUNT,
            currency=CURRENCY,
            customer=customer.id,
            payment_method=payment_method.id,
            confirm=True,
        )
        assert intent.status == "succeeded"

        path, headers, body, event = wait_for_event(received, "payment_intent.succeeded", intent.id)
    finally:
        localstripe.unregister_webhook(webhook_id)

    assert path == "/stripe/webhook"
    header = headers["Stripe-Signature"]
    assert stripe_client.WebhookSignature.verify_header(body, header, secret, tolerance=300) is True
    parsed = stripe_client.Webhook.construct_event(body, header, secret)
    assert parsed.id.startswith("evt_")
    assert parsed.type == "payment_intent.succeeded"
    assert parsed.data.object.status == "succeeded"
    assert event["api_version"] == "2017-08-15"  # localstripe's fixed value, not ours
    # The signature really covers the body and the secret.
    with pytest.raises(stripe_client.SignatureVerificationError):
        stripe_client.WebhookSignature.verify_header(body + b" ", header, secret, tolerance=300)
    with pytest.raises(stripe_client.SignatureVerificationError):
        stripe_client.WebhookSignature.verify_header(body, header, "whsec_wrong", tolerance=300)
