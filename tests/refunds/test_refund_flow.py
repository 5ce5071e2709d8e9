"""Refunds end to end against localstripe: a real paid order refunded over the API, the
ledger moves exactly, the processor confirms; refund.* events (signed here: localstripe does
not send them) complete, fail and reverse refunds, and record refunds made at the processor."""

from datetime import timedelta

import pytest
import time_machine

from billing.ledger.models import LedgerTransaction
from billing.payments.models import ExternalEvent
from billing.refunds import services, settlement
from billing.refunds.models import Refund
from core import clock
from tests.refunds.helpers import buy, card, ledger, post_event, refund_object, settled_payment

pytestmark = [pytest.mark.localstripe, pytest.mark.django_db(transaction=True)]

# A 2000 product bought from GB: 400 VAT, total 2400; platform fee 4% + 40 = 136.
TOTAL, TAX, FEE = 2400, 400, 136


@pytest.fixture
def ebook(make_product):
    return make_product("E-book")


@pytest.fixture
def paid(org, ebook, stripe_client):
    order = buy(org, ebook, card(stripe_client))
    assert (order.total, order.tax, order.platform_fee) == (TOTAL, TAX, FEE)
    return order


def test_full_refund_over_the_api(org, api, paid, stripe_client):
    before = ledger(org)
    assert before["merchant"] == TOTAL - TAX - FEE

    preview = api.post("/v1/refunds/preview", {"order_id": str(paid.pk)}, format="json")
    assert preview.status_code == 200, preview.json()
    assert preview.json() == {
        "order_id": str(paid.pk),
        "currency": "usd",
        "amount": TOTAL,
        "card_amount": TOTAL,
        "wallet_amount": 0,
        "tax_amount": TAX,
        "merchant_balance_change": -(TOTAL - TAX),
        "refundable_before": TOTAL,
        "refundable_after": 0,
        "order_status_after": "refunded",
    }
    assert not Refund.objects.exists()  # a preview writes nothing

    response = api.post(
        "/v1/refunds",
        {"order_id": str(paid.pk), "reason": "requested_by_customer", "comment": "asked by e-mail"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="refund-1",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["status"], body["amount"], body["card_amount"], body["tax_amount"]) == (
        "succeeded",
        TOTAL,
        TOTAL,
        TAX,
    )
    assert body["processor_refund_id"].startswith("re_")
    assert (body["origin"], body["reason"], body["comment"]) == (
        "recur",
        "requested_by_customer",
        "asked by e-mail",
    )

    paid.refresh_from_db()
    assert (paid.status, paid.refunded_amount) == ("refunded", TOTAL)
    payment = settled_payment(paid)
    assert payment.amount_refunded == TOTAL
    charge = stripe_client.PaymentIntent.retrieve(payment.processor_payment_id).latest_charge
    assert (
        stripe_client.Charge.retrieve(charge if isinstance(charge, str) else charge.id).amount_refunded
        == TOTAL
    )

    after = ledger(org)
    assert after["merchant"] - before["merchant"] == -(TOTAL - TAX)
    assert after["merchant"] == -FEE  # the platform fee is kept
    assert after["tax_payable"] - before["tax_payable"] == -TAX
    assert after["processor_cash"] - before["processor_cash"] == -TOTAL
    assert after["platform_revenue"] == before["platform_revenue"] == FEE
    refund_tx = LedgerTransaction.objects.get(type="refund")
    assert refund_tx.refund_id == Refund.objects.get().pk and refund_tx.order_id == paid.pk

    # The same key replays the answer; nothing is refunded twice.
    replay = api.post(
        "/v1/refunds",
        {"order_id": str(paid.pk), "reason": "requested_by_customer", "comment": "asked by e-mail"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="refund-1",
    )
    assert replay.json()["id"] == body["id"] and Refund.objects.count() == 1

    # Read back.
    assert api.get(f"/v1/refunds/{body['id']}").json()["status"] == "succeeded"
    listed = api.get("/v1/refunds", {"order_id": str(paid.pk), "status": "succeeded"}).json()
    assert [r["id"] for r in listed["results"]] == [body["id"]]
    assert api.get("/v1/refunds", {"status": "failed"}).json()["results"] == []
    assert api.get(f"/v1/orders/{paid.pk}").json()["status"] == "refunded"

    # Nothing is left: a second refund is refused and changes nothing.
    again = api.post("/v1/refunds", {"order_id": str(paid.pk), "reason": "other"}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "order_not_refundable"
    assert Refund.objects.count() == 1 and ledger(org) == after


def test_refund_failed_event_reverses_the_refund(org, api, paid, client, webhook_endpoint):
    before = ledger(org)
    created = api.post(
        "/v1/refunds", {"order_id": str(paid.pk), "amount": 1000, "reason": "other"}, format="json"
    ).json()
    refund = Refund.objects.get(pk=created["id"])
    assert (refund.status, refund.tax_amount) == ("succeeded", 167)  # 400 x 1000/2400, half-up
    paid.refresh_from_db()
    assert (paid.status, paid.refunded_amount) == ("partially_refunded", 1000)
    assert ledger(org)["merchant"] == before["merchant"] - (1000 - 167)

    failed = refund_object(refund, status="failed", failure_reason="expired_or_canceled_card")
    event = post_event(client, webhook_endpoint, "refund.failed", failed)
    refund.refresh_from_db()
    assert (refund.status, refund.failure_reason) == ("failed", "expired_or_canceled_card")
    paid.refresh_from_db()
    assert (paid.status, paid.refunded_amount) == ("paid", 0)
    assert settled_payment(paid).amount_refunded == 0
    assert ledger(org) == before  # balance, tax and cash restored
    reversal = LedgerTransaction.objects.get(type="refund_reversal")
    assert reversal.refund_id == refund.pk

    # A duplicate delivery, and an older "succeeded" snapshot arriving late, change nothing.
    post_event(client, webhook_endpoint, "refund.failed", failed, event_id=event["id"])
    post_event(
        client, webhook_endpoint, "refund.updated", refund_object(refund), created=event["created"] - 60
    )
    refund.refresh_from_db()
    assert refund.status == "failed"
    assert LedgerTransaction.objects.filter(type="refund_reversal").count() == 1
    assert ExternalEvent.objects.filter(type__startswith="refund.").count() == 2
    assert set(ExternalEvent.objects.values_list("status", flat=True)) <= {"processed"}
    assert ledger(org) == before

    # The amount is refundable again.
    assert services.order_refundable(paid) == TOTAL


def test_refund_made_in_the_stripe_dashboard_is_recorded(org, paid, client, webhook_endpoint, stripe_client):
    before = ledger(org)
    payment = settled_payment(paid)
    made = stripe_client.Refund.create(payment_intent=payment.processor_payment_id, amount=600)
    obj = refund_object(payment=payment, id=made.id, amount=600, status="pending")

    # refund.updated (succeeded) is delivered before refund.created (pending).
    post_event(client, webhook_endpoint, "refund.updated", {**obj, "status": "succeeded"})
    first = post_event(
        client, webhook_endpoint, "refund.created", obj, created=int(clock.now().timestamp()) - 5
    )
    post_event(client, webhook_endpoint, "refund.created", obj, event_id=first["id"])  # duplicate

    refund = Refund.objects.get()
    assert (refund.origin, refund.status, refund.amount, refund.processor_refund_id) == (
        "processor",
        "succeeded",
        600,
        made.id,
    )
    assert refund.tax_amount == 100  # 400 x 600/2400
    paid.refresh_from_db()
    assert (paid.status, paid.refunded_amount) == ("partially_refunded", 600)
    assert ledger(org)["merchant"] == before["merchant"] - 500
    assert LedgerTransaction.objects.filter(type="refund").count() == 1
    assert set(ExternalEvent.objects.values_list("status", flat=True)) == {"processed"}


def test_a_processor_refund_above_the_refundable_amount_is_stored_as_failed(
    org, api, paid, client, webhook_endpoint
):
    api.post("/v1/refunds", {"order_id": str(paid.pk), "amount": 2000, "reason": "other"}, format="json")
    before = (ledger(org), Refund.objects.count(), LedgerTransaction.objects.count())
    obj = refund_object(payment=settled_payment(paid), amount=1000)  # only 400 is left
    post_event(client, webhook_endpoint, "refund.created", obj)

    event = ExternalEvent.objects.get(type="refund.created")
    assert event.status == "failed" and "can still be refunded" in event.error
    assert (ledger(org), Refund.objects.count(), LedgerTransaction.objects.count()) == before


def test_unreachable_processor_leaves_the_refund_pending_for_the_sweeper(
    org, api, paid, settings, localstripe
):
    settings.STRIPE_API_HOST = "http://127.0.0.1:9"  # nothing listens: a connection error, retryable
    response = api.post("/v1/refunds", {"order_id": str(paid.pk), "reason": "other"}, format="json")
    assert response.status_code == 201
    refund = Refund.objects.get()
    assert (refund.status, refund.processor_refund_id) == ("pending", "")
    paid.refresh_from_db()
    assert paid.status == "refunded"  # counted at once, like Stripe's amount_refunded

    assert settlement.refunds_settle_pending() == 0  # too recent
    settings.STRIPE_API_HOST = localstripe.url
    with time_machine.travel(clock.now() + timedelta(minutes=3)):
        assert settlement.refunds_settle_pending() == 1
    refund.refresh_from_db()
    assert refund.status == "succeeded" and refund.processor_refund_id.startswith("re_")
    assert refund.failure_reason == ""
    assert settlement.refunds_settle_pending() == 0  # converged
