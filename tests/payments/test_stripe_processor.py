"""StripeProcessor against the session's localstripe, and against canned Stripe answers
where localstripe has no endpoint (Connect) or cannot produce a case (errors).

No database. Every request the processor makes goes through a recording HTTP client: to
localstripe (delegating to stripe-python's RequestsClient) or to a canned answer; nothing
reaches the internet.
"""

from __future__ import annotations

import json
import socket
import uuid
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import pytest
import stripe

from billing.payments.processor import ChargeOutcome, ProcessorError, RefundOutcome
from billing.payments.stripe_processor import StripeProcessor

AMOUNT = 2000
CURRENCY = "usd"
CARD_OK = "4242424242424242"
CARD_DECLINED_ON_ATTACH = "4000000000000002"
CARD_DECLINED_ON_CHARGE = "4000000000000341"


@dataclass
class Sent:
    method: str
    path: str
    query: dict[str, list[str]]
    params: dict[str, list[str]]  # the form-encoded body, decoded
    headers: dict[str, str]

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)


def _sent(method: str, url: str, headers, post_data) -> Sent:
    parts = urlsplit(url)
    body = post_data.decode() if isinstance(post_data, bytes) else (post_data or "")
    return Sent(method.upper(), parts.path, parse_qs(parts.query), parse_qs(body), dict(headers or {}))


class RecordingClient(stripe.RequestsClient):
    """stripe-python's requests client, noting every request before sending it."""

    name = "recording"

    def __init__(self):
        super().__init__(timeout=10)
        self.sent: list[Sent] = []

    def request(self, method, url, headers, post_data=None):
        self.sent.append(_sent(method, url, headers, post_data))
        return super().request(method, url, headers, post_data)

    def posts(self) -> list[Sent]:
        return [s for s in self.sent if s.method == "POST"]


class CannedClient(stripe.HTTPClient):
    """Answers each request with a Stripe-shaped JSON body queued for (method, path).

    This replaces Stripe's network, not our code: the processor still builds real
    requests through stripe-python and parses real responses."""

    name = "canned"

    def __init__(self):
        super().__init__()
        self.sent: list[Sent] = []
        self.routes: dict[tuple[str, str], tuple[int, dict, dict]] = {}

    def answer(self, method: str, path: str, body: dict, status: int = 200, headers: dict | None = None):
        self.routes[(method, path)] = (status, body, headers or {})

    def request(self, method, url, headers, post_data=None):
        sent = _sent(method, url, headers, post_data)
        self.sent.append(sent)
        status, body, extra = self.routes[(sent.method, sent.path)]
        return json.dumps(body), status, {"Request-Id": "req_canned", **extra}

    def close(self):
        pass


# -- fixtures and helpers ---------------------------------------------------------------


@pytest.fixture
def recorder(stripe_client):
    client = RecordingClient()
    yield client
    client.close()


@pytest.fixture
def processor(recorder):
    return StripeProcessor(max_network_retries=0, http_client=recorder)


@pytest.fixture
def canned(settings):
    settings.STRIPE_LIVE_MODE = False
    settings.STRIPE_API_HOST = "http://stripe.canned.invalid"  # never resolved: CannedClient answers
    return CannedClient()


@pytest.fixture
def canned_processor(canned):
    return StripeProcessor(max_network_retries=0, http_client=canned)


def key(label: str) -> str:
    return f"test:{label}:{uuid.uuid4().hex}"


def card(stripe_module, number: str) -> str:
    """A card PaymentMethod, as Stripe.js would create it in the browser."""
    pm = stripe_module.PaymentMethod.create(
        type="card", card={"number": number, "exp_month": 12, "exp_year": 2030, "cvc": "123"}
    )
    return pm.id


def customer_with_card(processor, stripe_module, number: str = CARD_OK) -> tuple[str, str]:
    customer_id = processor.customer_upsert(
        processor_customer_id=None,
        email="payer@example.com",
        name="Payer",
        metadata={},
        idempotency_key=key("cus"),
    )
    pm_id = card(stripe_module, number)
    processor.payment_method_attach(
        processor_customer_id=customer_id, payment_method_id=pm_id, idempotency_key=key("attach")
    )
    return customer_id, pm_id


def pay(
    processor, customer_id, pm_id, *, off_session=False, confirm=True, idempotency_key=None
) -> ChargeOutcome:
    return processor.payment_intent_create(
        amount=AMOUNT,
        currency=CURRENCY,
        processor_customer_id=customer_id,
        payment_method_id=pm_id,
        off_session=off_session,
        confirm=confirm,
        idempotency_key=idempotency_key or key("pay"),
        metadata={"order": "42"},
    )


def assert_every_post_carries_our_key(recorder: RecordingClient, keys: list[str]):
    """stripe-python adds a random Idempotency-Key to every POST: ours must replace it."""
    assert [p.header("Idempotency-Key") for p in recorder.posts()] == keys


# -- customers and payment methods (localstripe) ----------------------------------------


def test_customer_upsert_creates_then_updates(processor, recorder, stripe_client):
    create_key, update_key = key("cus-create"), key("cus-update")

    customer_id = processor.customer_upsert(
        processor_customer_id=None,
        email="ada@example.com",
        name="Ada",
        metadata={"org": 7, "customer": "c_1"},  # values are sent as strings
        idempotency_key=create_key,
    )
    updated_id = processor.customer_upsert(
        processor_customer_id=customer_id,
        email="ada@lovelace.example",
        name="Ada Lovelace",
        metadata={"plan": "pro"},
        idempotency_key=update_key,
    )

    assert customer_id.startswith("cus_")
    assert updated_id == customer_id
    customer = stripe_client.Customer.retrieve(customer_id)
    assert (customer.email, customer.name) == ("ada@lovelace.example", "Ada Lovelace")
    assert customer.metadata.to_dict() == {"org": "7", "customer": "c_1", "plan": "pro"}
    create, update = recorder.posts()
    assert (create.path, update.path) == ("/v1/customers", f"/v1/customers/{customer_id}")
    assert create.params["metadata[org]"] == ["7"]
    assert_every_post_carries_our_key(recorder, [create_key, update_key])


def test_attach_returns_card_details(processor, recorder, stripe_client):
    customer_id = processor.customer_upsert(
        processor_customer_id=None, email="", name="", metadata={}, idempotency_key=key("cus")
    )
    pm_id = card(stripe_client, CARD_OK)
    attach_key = key("attach")

    info = processor.payment_method_attach(
        processor_customer_id=customer_id, payment_method_id=pm_id, idempotency_key=attach_key
    )

    assert (info.id, info.brand, info.last4, info.exp_month, info.exp_year) == (
        pm_id,
        "visa",
        "4242",
        12,
        2030,
    )
    assert stripe_client.PaymentMethod.retrieve(pm_id).customer == customer_id
    assert "email" not in recorder.posts()[0].params  # empty values are not sent
    assert recorder.posts()[-1].header("Idempotency-Key") == attach_key


def test_attach_decline_raises_non_retryable(processor, stripe_client):
    customer_id = processor.customer_upsert(
        processor_customer_id=None, email="", name="", metadata={}, idempotency_key=key("cus")
    )

    with pytest.raises(ProcessorError) as excinfo:
        processor.payment_method_attach(
            processor_customer_id=customer_id,
            payment_method_id=card(stripe_client, CARD_DECLINED_ON_ATTACH),
            idempotency_key=key("attach"),
        )

    assert excinfo.value.code == "card_declined"
    assert excinfo.value.retryable is False


def test_detach(processor, recorder, stripe_client):
    _, pm_id = customer_with_card(processor, stripe_client)
    detach_key = key("detach")

    assert processor.payment_method_detach(payment_method_id=pm_id, idempotency_key=detach_key) is None

    assert stripe_client.PaymentMethod.retrieve(pm_id).customer is None
    assert recorder.posts()[-1].path == f"/v1/payment_methods/{pm_id}/detach"
    assert recorder.posts()[-1].header("Idempotency-Key") == detach_key


# -- payments (localstripe) -------------------------------------------------------------


def test_on_session_payment_succeeds(processor, recorder, stripe_client):
    customer_id, pm_id = customer_with_card(processor, stripe_client)
    pay_key = key("pay")

    outcome = pay(processor, customer_id, pm_id, idempotency_key=pay_key)

    assert outcome.status == "succeeded"
    assert outcome.payment_intent_id.startswith("pi_")
    assert outcome.charge_id.startswith("ch_")
    assert outcome.client_secret.startswith(outcome.payment_intent_id)
    assert (outcome.decline_code, outcome.decline_message) == ("", "")
    charge = stripe_client.Charge.retrieve(outcome.charge_id)
    assert (charge.payment_intent, charge.amount, charge.status) == (
        outcome.payment_intent_id,
        AMOUNT,
        "succeeded",
    )
    # localstripe's charges carry no ``outcome``; Stripe's give a risk level.
    expected_risk = charge.outcome.risk_level if "outcome" in charge else ""
    assert outcome.risk_level == expected_risk
    create = recorder.posts()[-1]
    assert create.path == "/v1/payment_intents"
    assert create.header("Idempotency-Key") == pay_key
    assert create.params["payment_method_types[0]"] == ["card"]
    assert create.params["confirm"] == ["true"]
    assert create.params["metadata[order]"] == ["42"]
    assert "off_session" not in create.params
    assert "automatic_payment_methods" not in str(create.params)


def test_off_session_payment_with_saved_card_succeeds(processor, recorder, stripe_client):
    customer_id, pm_id = customer_with_card(processor, stripe_client)

    outcome = pay(processor, customer_id, pm_id, off_session=True)

    assert outcome.status == "succeeded"
    assert outcome.charge_id.startswith("ch_")
    assert recorder.posts()[-1].params["off_session"] == ["true"]


def test_declined_charge_is_a_failed_outcome(processor, recorder, stripe_client):
    customer_id, pm_id = customer_with_card(processor, stripe_client, CARD_DECLINED_ON_CHARGE)

    outcome = pay(processor, customer_id, pm_id, off_session=True)

    assert outcome.status == "failed"
    assert outcome.decline_code == "card_declined"
    assert outcome.decline_message == "Your card was declined."
    assert outcome.payment_intent_id.startswith("pi_")
    assert outcome.charge_id.startswith("ch_")
    assert stripe_client.Charge.retrieve(outcome.charge_id).payment_intent == outcome.payment_intent_id
    # Read again later, the intent is still a failed payment.
    again = processor.payment_intent_retrieve(payment_intent_id=outcome.payment_intent_id)
    assert (again.status, again.decline_code, again.charge_id) == (
        "failed",
        "card_declined",
        outcome.charge_id,
    )
    # The decline lookups are reads: only the create was a POST.
    assert [p.path for p in recorder.posts()][-1] == "/v1/payment_intents"


def test_create_then_confirm_in_two_steps(processor, recorder, stripe_client):
    customer_id, pm_id = customer_with_card(processor, stripe_client)
    created = pay(processor, customer_id, pm_id, confirm=False)
    assert created.status == "requires_action"  # requires_confirmation
    assert created.charge_id == ""
    confirm_key = key("confirm")

    confirmed = processor.payment_intent_confirm(
        payment_intent_id=created.payment_intent_id, payment_method_id=pm_id, idempotency_key=confirm_key
    )

    assert confirmed.status == "succeeded"
    assert confirmed.payment_intent_id == created.payment_intent_id
    assert confirmed.charge_id.startswith("ch_")
    confirm = recorder.posts()[-1]
    assert confirm.path == f"/v1/payment_intents/{created.payment_intent_id}/confirm"
    assert confirm.header("Idempotency-Key") == confirm_key
    assert "payment_method" not in confirm.params  # already set on the intent

    # A retried confirm (first response lost) reports the state without confirming again.
    posts_before = len(recorder.posts())
    retried = processor.payment_intent_confirm(
        payment_intent_id=created.payment_intent_id, payment_method_id=pm_id, idempotency_key=confirm_key
    )
    assert retried == confirmed
    assert len(recorder.posts()) == posts_before


def test_confirm_declined_is_a_failed_outcome(processor, stripe_client):
    customer_id, pm_id = customer_with_card(processor, stripe_client, CARD_DECLINED_ON_CHARGE)
    created = pay(processor, customer_id, pm_id, confirm=False)

    outcome = processor.payment_intent_confirm(
        payment_intent_id=created.payment_intent_id, payment_method_id=None, idempotency_key=key("confirm")
    )

    assert (outcome.status, outcome.decline_code) == ("failed", "card_declined")
    assert outcome.payment_intent_id == created.payment_intent_id


def test_intent_without_payment_method_requires_action(processor, stripe_client):
    outcome = pay(processor, None, None, confirm=False)

    assert outcome.status == "requires_action"  # requires_payment_method, nothing failed
    assert outcome.decline_code == ""
    assert outcome.client_secret


def test_full_and_partial_refunds(processor, recorder, stripe_client):
    customer_id, pm_id = customer_with_card(processor, stripe_client)
    full_payment = pay(processor, customer_id, pm_id)
    partial_payment = pay(processor, customer_id, pm_id)
    full_key, partial_key = key("refund-full"), key("refund-partial")

    full = processor.refund_create(
        payment_intent_id=full_payment.payment_intent_id,
        amount=None,
        reason="customer changed their mind",  # not one of Stripe's reasons: not sent
        idempotency_key=full_key,
        metadata={"refund": "r_1"},
    )
    partial = processor.refund_create(
        payment_intent_id=partial_payment.payment_intent_id,
        amount=500,
        reason="",
        idempotency_key=partial_key,
        metadata={},
    )

    assert isinstance(full, RefundOutcome)
    assert full.refund_id.startswith("re_")
    assert (full.status, full.amount, full.currency) == ("succeeded", AMOUNT, CURRENCY)
    assert (partial.status, partial.amount, partial.currency) == ("succeeded", 500, CURRENCY)
    assert stripe_client.Charge.retrieve(partial_payment.charge_id).amount_refunded == 500
    full_post, partial_post = recorder.posts()[-2:]
    assert full_post.path == partial_post.path == "/v1/refunds"
    assert full_post.params["payment_intent"] == [full_payment.payment_intent_id]
    assert "amount" not in full_post.params and "reason" not in full_post.params
    assert partial_post.params["amount"] == ["500"]
    assert (full_post.header("Idempotency-Key"), partial_post.header("Idempotency-Key")) == (
        full_key,
        partial_key,
    )


def test_balance_transaction_for_successful_charge(processor, stripe_client):
    customer_id, pm_id = customer_with_card(processor, stripe_client)
    outcome = pay(processor, customer_id, pm_id)

    info = processor.balance_transaction_for_charge(charge_id=outcome.charge_id)

    assert info is not None
    assert info.id.startswith("txn_")
    assert (info.amount, info.currency) == (AMOUNT, CURRENCY)
    assert info.fee >= 0
    assert info.net == info.amount - info.fee


def test_balance_transaction_is_none_for_a_declined_charge(processor, stripe_client):
    customer_id, pm_id = customer_with_card(processor, stripe_client, CARD_DECLINED_ON_CHARGE)
    outcome = pay(processor, customer_id, pm_id)

    assert processor.balance_transaction_for_charge(charge_id=outcome.charge_id) is None


def test_every_mutating_request_carries_our_idempotency_key(processor, recorder, stripe_client):
    keys = [key(label) for label in ("cus", "attach", "pay", "pay-2", "confirm", "refund", "detach")]
    customer_id = processor.customer_upsert(
        processor_customer_id=None, email="k@example.com", name="", metadata={}, idempotency_key=keys[0]
    )
    pm_id = card(stripe_client, CARD_OK)  # the browser's call, not ours: not recorded
    processor.payment_method_attach(
        processor_customer_id=customer_id, payment_method_id=pm_id, idempotency_key=keys[1]
    )
    paid = pay(processor, customer_id, pm_id, off_session=True, idempotency_key=keys[2])
    pending = pay(processor, customer_id, pm_id, confirm=False, idempotency_key=keys[3])
    processor.payment_intent_confirm(
        payment_intent_id=pending.payment_intent_id, payment_method_id=pm_id, idempotency_key=keys[4]
    )
    processor.refund_create(
        payment_intent_id=paid.payment_intent_id, amount=100, reason="", idempotency_key=keys[5], metadata={}
    )
    processor.payment_method_detach(payment_method_id=pm_id, idempotency_key=keys[6])

    assert_every_post_carries_our_key(recorder, keys)
    assert all(s.header("Idempotency-Key") is None for s in recorder.sent if s.method == "GET")
    assert all(s.path.startswith("/v1/") for s in recorder.sent)


def test_unknown_object_is_a_non_retryable_error(processor):
    with pytest.raises(ProcessorError) as excinfo:
        processor.payment_intent_retrieve(payment_intent_id="pi_doesnotexist")

    assert excinfo.value.retryable is False


def test_connection_error_is_retryable(settings, stripe_client):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.STRIPE_API_HOST = f"http://127.0.0.1:{port}"
    processor = StripeProcessor(max_network_retries=0)

    with pytest.raises(ProcessorError) as excinfo:
        processor.payment_intent_retrieve(payment_intent_id="pi_123")

    assert excinfo.value.retryable is True
    assert excinfo.value.code == "api_connection_error"


def test_client_follows_settings(settings, stripe_client, localstripe):
    processor = StripeProcessor()
    client = processor._stripe()
    assert processor._client_config == (settings.STRIPE_TEST_SECRET_KEY, localstripe.url, 0)
    assert processor._stripe() is client  # reused while settings stay
    settings.STRIPE_LIVE_MODE = True
    settings.STRIPE_LIVE_SECRET_KEY = "sk_live_example"
    del settings.STRIPE_API_HOST  # as in production
    assert processor._stripe() is not client
    assert processor._client_config == ("sk_live_example", None, 2)
    settings.STRIPE_LIVE_SECRET_KEY = ""
    with pytest.raises(ProcessorError) as excinfo:
        processor._stripe()
    assert excinfo.value.code == "not_configured"


# -- Connect and error shapes (canned Stripe answers) ----------------------------------


def test_connected_account_create(canned, canned_processor):
    canned.answer(
        "POST",
        "/v1/accounts",
        {
            "id": "acct_1",
            "object": "account",
            "type": "express",
            "charges_enabled": False,
            "payouts_enabled": False,
        },
    )

    account = canned_processor.connected_account_create(
        country="us", email="seller@example.com", idempotency_key="k-acct"
    )

    assert (account.id, account.charges_enabled, account.payouts_enabled) == ("acct_1", False, False)
    (sent,) = canned.sent
    assert (sent.method, sent.path) == ("POST", "/v1/accounts")
    assert sent.params == {
        "type": ["express"],
        "country": ["US"],
        "email": ["seller@example.com"],
        "capabilities[transfers][requested]": ["true"],
    }
    assert sent.header("Idempotency-Key") == "k-acct"
    assert sent.header("Stripe-Account") is None


def test_connected_account_retrieve(canned, canned_processor):
    canned.answer(
        "GET",
        "/v1/accounts/acct_1",
        {"id": "acct_1", "object": "account", "charges_enabled": True, "payouts_enabled": True},
    )

    account = canned_processor.connected_account_retrieve(account_id="acct_1")

    assert (account.id, account.charges_enabled, account.payouts_enabled) == ("acct_1", True, True)
    (sent,) = canned.sent
    assert sent.method == "GET"
    assert sent.header("Idempotency-Key") is None


def test_transfer_create(canned, canned_processor):
    canned.answer(
        "POST",
        "/v1/transfers",
        {"id": "tr_1", "object": "transfer", "amount": 1500, "currency": "usd", "destination": "acct_1"},
    )

    transfer = canned_processor.transfer_create(
        amount=1500, currency="USD", destination="acct_1", idempotency_key="k-tr", metadata={"payout": 9}
    )

    assert (transfer.transfer_id, transfer.amount, transfer.currency) == ("tr_1", 1500, "usd")
    (sent,) = canned.sent
    assert (sent.method, sent.path) == ("POST", "/v1/transfers")
    assert sent.params == {
        "amount": ["1500"],
        "currency": ["usd"],
        "destination": ["acct_1"],
        "metadata[payout]": ["9"],
    }
    assert sent.header("Idempotency-Key") == "k-tr"
    assert sent.header("Stripe-Account") is None  # made by the platform


def test_payout_create_is_made_as_the_connected_account(canned, canned_processor):
    canned.answer(
        "POST",
        "/v1/payouts",
        {"id": "po_1", "object": "payout", "amount": 1500, "currency": "usd", "status": "pending"},
    )

    payout = canned_processor.payout_create(
        amount=1500,
        currency="usd",
        connected_account_id="acct_1",
        idempotency_key="k-po",
        metadata={"payout": "9"},
    )

    assert (payout.payout_id, payout.status, payout.amount, payout.currency) == (
        "po_1",
        "pending",
        1500,
        "usd",
    )
    (sent,) = canned.sent
    assert (sent.method, sent.path) == ("POST", "/v1/payouts")
    assert sent.params == {"amount": ["1500"], "currency": ["usd"], "metadata[payout]": ["9"]}
    assert sent.header("Idempotency-Key") == "k-po"
    assert sent.header("Stripe-Account") == "acct_1"


@pytest.mark.parametrize(
    ("reason", "sent_reason"),
    [
        ("duplicate", ["duplicate"]),
        ("fraudulent", ["fraudulent"]),
        ("requested_by_customer", ["requested_by_customer"]),
        ("other", None),
    ],
)
def test_refund_reason_is_sent_only_when_stripe_knows_it(canned, canned_processor, reason, sent_reason):
    canned.answer(
        "POST",
        "/v1/refunds",
        {"id": "re_1", "object": "refund", "amount": 2000, "currency": "eur", "status": "pending"},
    )

    refund = canned_processor.refund_create(
        payment_intent_id="pi_1", amount=None, reason=reason, idempotency_key="k-re", metadata={}
    )

    assert refund == RefundOutcome(refund_id="re_1", status="pending", amount=2000, currency="eur")
    assert canned.sent[0].params.get("reason") == sent_reason


def test_real_stripe_decline_shape(canned, canned_processor):
    """Real Stripe: the 402 embeds the intent; latest_charge is an id unless expanded; the
    issuer's reason is in decline_code and the charge has an outcome."""
    intent = {
        "id": "pi_1",
        "object": "payment_intent",
        "status": "requires_payment_method",
        "client_secret": "pi_1_secret_x",
        "latest_charge": "ch_1",
        "last_payment_error": {
            "type": "card_error",
            "code": "card_declined",
            "decline_code": "insufficient_funds",
            "message": "Your card has insufficient funds.",
            "charge": "ch_1",
        },
    }
    canned.answer(
        "POST",
        "/v1/payment_intents",
        {"error": {**intent["last_payment_error"], "payment_intent": intent}},
        status=402,
    )
    charge = {
        "id": "ch_1",
        "object": "charge",
        "status": "failed",
        "failure_code": "card_declined",
        "outcome": {
            "network_status": "declined_by_network",
            "risk_level": "normal",
            "type": "issuer_declined",
        },
    }
    canned.answer("GET", "/v1/payment_intents/pi_1", {**intent, "latest_charge": charge})

    outcome = pay(canned_processor, "cus_1", "pm_1", off_session=True, idempotency_key="k-pay")

    assert outcome == ChargeOutcome(
        status="failed",
        payment_intent_id="pi_1",
        charge_id="ch_1",
        decline_code="insufficient_funds",
        decline_message="Your card has insufficient funds.",
        risk_level="normal",
        client_secret="pi_1_secret_x",
    )
    create, reread = canned.sent
    assert create.header("Idempotency-Key") == "k-pay"
    assert (reread.method, reread.query["expand[0]"]) == ("GET", ["latest_charge"])


@pytest.mark.parametrize(
    ("status", "latest_charge", "expected"),
    [
        ("processing", "ch_1", ("processing", "ch_1")),
        ("requires_action", None, ("requires_action", "")),
        ("requires_capture", {"id": "ch_2", "object": "charge"}, ("processing", "ch_2")),
        ("canceled", None, ("canceled", "")),
    ],
)
def test_status_mapping(canned, canned_processor, status, latest_charge, expected):
    canned.answer(
        "GET",
        "/v1/payment_intents/pi_1",
        {"id": "pi_1", "object": "payment_intent", "status": status, "latest_charge": latest_charge},
    )

    outcome = canned_processor.payment_intent_retrieve(payment_intent_id="pi_1")

    assert (outcome.status, outcome.charge_id) == expected


def test_balance_transaction_fetched_when_not_expanded(canned, canned_processor):
    canned.answer(
        "GET", "/v1/charges/ch_1", {"id": "ch_1", "object": "charge", "balance_transaction": "txn_1"}
    )
    canned.answer(
        "GET",
        "/v1/balance_transactions/txn_1",
        {
            "id": "txn_1",
            "object": "balance_transaction",
            "amount": 2000,
            "fee": 88,
            "net": 1912,
            "currency": "usd",
        },
    )

    info = canned_processor.balance_transaction_for_charge(charge_id="ch_1")

    assert (info.id, info.amount, info.fee, info.net, info.currency) == ("txn_1", 2000, 88, 1912, "usd")


@pytest.mark.parametrize(
    ("status", "body", "headers", "retryable", "code"),
    [
        (500, {"error": {"type": "api_error", "message": "boom"}}, {}, True, "api_error"),
        (500, {"error": {"type": "api_error"}}, {"Stripe-Should-Retry": "false"}, False, "api_error"),
        (429, {"error": {"type": "invalid_request_error", "code": "rate_limit"}}, {}, True, "rate_limit"),
        (409, {"error": {"type": "invalid_request_error", "code": "lock_timeout"}}, {}, True, "lock_timeout"),
        (
            400,
            {
                "error": {
                    "type": "invalid_request_error",
                    "code": "parameter_invalid_integer",
                    "param": "amount",
                }
            },
            {},
            False,
            "parameter_invalid_integer",
        ),
        (
            400,
            {"error": {"type": "idempotency_error", "message": "Keys for idempotent requests..."}},
            {},
            False,
            "idempotency_error",
        ),
        (
            401,
            {"error": {"type": "invalid_request_error", "message": "Invalid API Key"}},
            {},
            False,
            "invalid_request_error",
        ),
    ],
)
def test_error_mapping(canned, canned_processor, status, body, headers, retryable, code):
    canned.answer("POST", "/v1/transfers", body, status=status, headers=headers)

    with pytest.raises(ProcessorError) as excinfo:
        canned_processor.transfer_create(
            amount=100, currency="usd", destination="acct_1", idempotency_key="k", metadata={}
        )

    assert (excinfo.value.retryable, excinfo.value.code) == (retryable, code)


# -- finding an intent by our metadata (the settlement sweeper) ------------------------------


@pytest.fixture
def real_stripe(canned, settings):
    """As against real Stripe (no local API host): every request still answered by ``canned``."""
    settings.STRIPE_API_HOST = ""
    return StripeProcessor(max_network_retries=0, http_client=canned)


def _intent(pi_id: str, payment_id: str, status: str = "succeeded") -> dict:
    return {
        "id": pi_id,
        "object": "payment_intent",
        "amount": AMOUNT,
        "amount_received": AMOUNT if status == "succeeded" else 0,
        "currency": CURRENCY,
        "status": status,
        "metadata": {"recur_payment_id": payment_id},
    }


def test_find_lists_the_customers_intents_since_the_attempt_and_proves_absence(canned, real_stripe):
    from datetime import UTC, datetime

    canned.answer(
        "GET",
        "/v1/payment_intents",
        {"object": "list", "has_more": False, "data": [_intent("pi_other", "someone-else")]},
    )
    since = datetime(2027, 3, 1, 10, 0, tzinfo=UTC)
    assert (
        real_stripe.payment_intent_find(
            recur_payment_id="p1", processor_customer_id="cus_1", created_after=since
        )
        is None
    )
    (sent,) = canned.sent
    assert sent.query["customer"] == ["cus_1"]
    assert sent.query["created[gte]"] == [str(int(since.timestamp()) - 600)]


def test_find_returns_the_intent_our_metadata_names(canned, real_stripe):
    from datetime import UTC, datetime

    canned.answer(
        "GET", "/v1/payment_intents", {"object": "list", "has_more": False, "data": [_intent("pi_9", "p1")]}
    )
    canned.answer("GET", "/v1/payment_intents/pi_9", _intent("pi_9", "p1"))
    found = real_stripe.payment_intent_find(
        recur_payment_id="p1", processor_customer_id="cus_1", created_after=datetime.now(UTC)
    )
    assert (found.payment_intent_id, found.status, found.amount_received, found.currency) == (
        "pi_9",
        "succeeded",
        AMOUNT,
        CURRENCY,
    )


def test_find_without_a_customer_never_claims_absence(canned, real_stripe):
    """Search lags behind writes: an empty answer is not a proof."""
    from datetime import UTC, datetime

    canned.answer(
        "GET", "/v1/payment_intents/search", {"object": "search_result", "has_more": False, "data": []}
    )
    with pytest.raises(ProcessorError) as inconclusive:
        real_stripe.payment_intent_find(
            recur_payment_id="p1", processor_customer_id=None, created_after=datetime.now(UTC)
        )
    assert inconclusive.value.code == "lookup_inconclusive"
    assert "metadata['recur_payment_id']:'p1'" in canned.sent[0].query["query"][0]
