"""Refund rules on the manual processor and on orders settled without a processor call:
partial refunds down to refunded with the tax split exactly, the wallet part, revoking
benefits, the cap under concurrent requests, and every bad input refused with nothing changed."""

import threading
from uuid import UUID

import pytest
from django.db import connection

from billing.ledger.models import LedgerTransaction
from billing.ledger.postings import ledger_post_wallet_credit
from billing.ledger.selectors import wallet_balance
from billing.orders.models import Order
from billing.orders.services import Line, order_create
from billing.payments import services as payment_services
from billing.refunds import services
from billing.refunds.models import Refund
from core import clock
from core.events.models import Event
from tests.refunds.helpers import buy, ledger, nothing_changed_snapshot, settled_order, settled_payment
from tests.subscriptions.scenario import subscribe


@pytest.fixture
def manual_ebook(manual_org, make_product):
    return make_product("E-book")


@pytest.mark.django_db(transaction=True)
def test_partial_refunds_add_up_to_the_order_exactly(manual_org, manual_ebook, make_api):
    api = make_api(manual_org)
    order = buy(manual_org, manual_ebook)  # 2000 + 400 VAT
    start = ledger(manual_org)

    first = api.post(
        "/v1/refunds",
        {"order_id": str(order.pk), "amount": 1000, "reason": "duplicate", "currency": "USD"},
        format="json",
    )
    assert first.status_code == 201, first.json()
    assert (first.json()["status"], first.json()["tax_amount"]) == ("succeeded", 167)
    assert first.json()["processor_refund_id"].startswith("manual_re_")
    order.refresh_from_db()
    assert (order.status, order.refunded_amount) == ("partially_refunded", 1000)

    preview = api.post("/v1/refunds/preview", {"order_id": str(order.pk)}, format="json").json()
    assert (preview["amount"], preview["tax_amount"], preview["order_status_after"]) == (
        1400,
        233,
        "refunded",
    )
    second = api.post("/v1/refunds", {"order_id": str(order.pk)}, format="json").json()  # the rest
    assert (second["amount"], second["tax_amount"], second["status"]) == (1400, 233, "succeeded")
    assert second["reason"] == "requested_by_customer"

    order.refresh_from_db()
    assert (order.status, order.refunded_amount) == ("refunded", 2400)
    assert settled_payment(order).amount_refunded == 2400
    end = ledger(manual_org)
    assert end["merchant"] - start["merchant"] == -2000  # net only; the 136 platform fee is kept
    assert end["tax_payable"] - start["tax_payable"] == -400
    assert end["processor_cash"] - start["processor_cash"] == -2400
    assert end["platform_revenue"] == start["platform_revenue"]
    assert LedgerTransaction.objects.filter(type="refund").count() == 2


@pytest.mark.django_db
def test_the_part_paid_from_the_wallet_goes_back_to_the_wallet(org, customer):
    ledger_post_wallet_credit(customer=customer, amount=500, currency="usd", idempotency_key="test:credit")
    order = order_create(
        organization=org, customer=customer, billing_reason="purchase", currency="usd",
        lines=[Line(label="E-book", amount=2000)],
    )  # fmt: skip
    Order.objects.filter(pk=order.pk).update(applied_balance=500, due=1500)
    payment = payment_services.payment_create(
        organization=org, customer=customer, reference=order.reference, amount=1500, currency="usd",
        trigger="purchase",
    )  # fmt: skip
    payment_services.payment_apply_snapshot(
        payment=payment, status="succeeded", observed_at=clock.now(), facts={"processor_payment_id": "pi_w"}
    )
    order.refresh_from_db()
    assert order.status == "paid" and wallet_balance(customer, "usd") == 0

    preview = services.refund_preview(order=order)
    assert (preview.amount, preview.card_amount, preview.wallet_amount) == (2000, 1500, 500)
    # Card first: 1600 takes all of the card and 100 of the wallet part.
    refund = services.refund_create(order=order, amount=1600, reason="other")
    assert (refund.card_amount, refund.wallet_amount, refund.status) == (1500, 100, "pending")
    assert wallet_balance(customer, "usd") == 100
    # The rest can only go back to the wallet: no processor call, succeeded at once.
    rest = services.refund_create(order=order, amount=400, reason="other")
    assert (rest.card_amount, rest.wallet_amount, rest.status) == (0, 400, "succeeded")
    assert wallet_balance(customer, "usd") == 500
    order.refresh_from_db()
    assert order.status == "refunded"


@pytest.mark.django_db(transaction=True)
def test_revoke_benefits_ends_the_subscription(manual_org, plans, make_api):
    def revoked():
        """The orders whose refunds told benefits to go (``refund.created`` with the flag)."""
        events = Event.objects.filter(type="refund.created").order_by("pk")
        return [UUID(e.data["order_id"]) for e in events if e.data["revoke_benefits"]]

    subscription = subscribe(manual_org, plans["basic"])
    order = subscription.orders.get()
    api = make_api(manual_org)
    response = api.post(
        "/v1/refunds",
        {"order_id": str(order.pk), "amount": 1000, "revoke_benefits": True, "reason": "fraudulent"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["revoke_benefits"] is True
    subscription.refresh_from_db()
    assert subscription.status == "canceled" and subscription.ended_at is not None
    assert revoked() == [order.pk]
    assert Event.objects.filter(type="order.refunded", object_id=str(order.pk)).exists()
    # Already ended: a second refund with the flag still goes through.
    again = api.post("/v1/refunds", {"order_id": str(order.pk), "revoke_benefits": True}, format="json")
    assert again.status_code == 201 and again.json()["status"] == "succeeded"
    assert revoked() == [order.pk, order.pk]


@pytest.mark.django_db(transaction=True)
def test_concurrent_refunds_never_exceed_the_order(manual_org, manual_ebook, make_api):
    order = buy(manual_org, manual_ebook)  # total 2400
    clients = [make_api(manual_org) for _ in range(6)]
    barrier = threading.Barrier(len(clients))
    answers: list = [None] * len(clients)

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            response = clients[i].post(
                "/v1/refunds", {"order_id": str(order.pk), "amount": 1000}, format="json"
            )
            answers[i] = (response.status_code, response.json().get("code") or response.json()["status"])
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(answers) == [(201, "succeeded")] * 2 + [(400, "amount_exceeds_refundable")] * 4
    order.refresh_from_db()
    assert (order.status, order.refunded_amount) == ("partially_refunded", 2000)
    assert Refund.objects.count() == 2 and LedgerTransaction.objects.filter(type="refund").count() == 2
    assert services.order_refundable(order) == 400


# --- bad input: a 4xx with a field message, and nothing changed -------------------------------


@pytest.fixture
def order(org, customer):
    return settled_order(org, customer)  # 2000 + 400 tax, paid


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({"amount": 2401}, 400, "amount_exceeds_refundable", "amount"),
        ({"amount": 0}, 400, "min_value", "amount"),
        ({"amount": -5}, 400, "min_value", "amount"),
        ({"amount": "ten"}, 400, "invalid", "amount"),
        ({"currency": "eur"}, 400, "currency_mismatch", "currency"),
        ({"reason": "bored"}, 400, "invalid_choice", "reason"),
        ({"order_id": "7f9e5a52-1f3c-4c59-9d0e-3a8f4f6b8c11"}, 400, "not_found", "order_id"),
        ({"order_id": "not-a-uuid"}, 400, "invalid", "order_id"),
    ],
)
def test_bad_refund_requests_are_refused_and_change_nothing(api, order, body, status, code, field):
    before = nothing_changed_snapshot(order)
    for path in ("/v1/refunds/preview", "/v1/refunds"):
        response = api.post(path, {"order_id": str(order.pk), **body}, format="json")
        assert response.status_code == status, response.json()
        errors = response.json()["errors"]
        assert [(e["field"], e["code"]) for e in errors] == [(field, code)], errors
    assert nothing_changed_snapshot(order) == before


@pytest.mark.django_db
def test_above_refundable_says_what_is_refundable(api, order):
    services.refund_create(order=order, amount=400, reason="other")  # pending (no processor call here)
    before = nothing_changed_snapshot(order)
    response = api.post("/v1/refunds", {"order_id": str(order.pk), "amount": 2001}, format="json")
    assert response.status_code == 400
    assert "At most $20.00 (2000 in minor units)" in response.json()["errors"][0]["detail"]
    assert nothing_changed_snapshot(order) == before


@pytest.mark.django_db
def test_unpaid_and_void_orders_cannot_be_refunded(api, org, customer):
    unpaid = order_create(
        organization=org, customer=customer, billing_reason="purchase", currency="usd",
        lines=[Line(label="E-book", amount=2000)],
    )  # fmt: skip
    for status in ("pending", "void"):
        Order.objects.filter(pk=unpaid.pk).update(status=status)
        before = nothing_changed_snapshot(unpaid)
        response = api.post("/v1/refunds", {"order_id": str(unpaid.pk), "amount": 100}, format="json")
        assert response.status_code == 409
        assert response.json()["code"] == "order_not_refundable"
        assert nothing_changed_snapshot(unpaid) == before


@pytest.mark.django_db
def test_another_organizations_order_is_not_found(make_org, make_api, order):
    stranger = make_api(make_org("Stranger"))
    before = nothing_changed_snapshot(order)
    response = stranger.post("/v1/refunds", {"order_id": str(order.pk)}, format="json")
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "order_id"
    assert str(order.pk) not in response.content.decode()
    assert nothing_changed_snapshot(order) == before


@pytest.mark.django_db
def test_a_read_only_token_may_preview_but_not_refund(org, make_api, order):
    reader = make_api(org, scopes=["refunds:read"])
    assert reader.post("/v1/refunds/preview", {"order_id": str(order.pk)}, format="json").status_code == 200
    refused = reader.post("/v1/refunds", {"order_id": str(order.pk)}, format="json")
    assert refused.status_code == 403
    assert not Refund.objects.exists()
