"""/v1/balance and /v1/ledger/transactions."""

from datetime import datetime, timedelta

import pytest
import time_machine

from accounts.models import Organization
from billing.ledger.models import LedgerTransaction
from billing.ledger.postings import ledger_post_balance_adjustment, ledger_post_processor_fee
from billing.orders.services import Line, order_create
from billing.payments.models import Payment

pytestmark = pytest.mark.django_db

T0 = datetime.fromisoformat("2027-03-01T12:00:00+00:00")


@pytest.fixture
def merchant(org):
    Organization.objects.filter(pk=org.pk).update(
        payment_processor="manual", platform_fee_bps=500, platform_fee_fixed=30, payout_hold_days=7
    )
    org.refresh_from_db()
    return org


def paid(org, customer, amount, currency="usd", tax=0):
    return order_create(
        organization=org, customer=customer, billing_reason="purchase", currency=currency,
        lines=[Line(label="Thing", amount=amount)], tax=tax, paid=True,
    )  # fmt: skip


def test_balance_per_currency_with_the_payout_hold(merchant, customer, api):
    with time_machine.travel(T0, tick=False):
        paid(merchant, customer, 10_000)  # platform fee 530: merchant 9470
    with time_machine.travel(T0 + timedelta(days=3), tick=False):
        paid(merchant, customer, 5_000)  # fee 280: 4720
        paid(merchant, customer, 2_000, currency="eur")  # fee 130: 1870
    with time_machine.travel(T0 + timedelta(days=8), tick=False):
        ledger_post_balance_adjustment(
            organization=merchant, amount=-1_000, currency="usd", idempotency_key="adj:1", description="fix"
        )
    with time_machine.travel(T0 + timedelta(days=8, seconds=1), tick=False):
        response = api.get("/v1/balance")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["object"] == "balance" and body["payout_hold_days"] == 7
    figures = [{k: v for k, v in b.items() if k != "breakdown"} for b in body["balances"]]
    assert figures == [
        # eur: paid 5 days ago, still inside the hold
        {"currency": "eur", "balance": 1870, "available": 0, "pending": 1870, "in_transit": 0},
        # usd: the first order is past the hold, the second is not; the debit counts at once
        {"currency": "usd", "balance": 13_190, "available": 8470, "pending": 4720, "in_transit": 0},
    ]
    with time_machine.travel(T0 + timedelta(days=11), tick=False):
        usd = api.get("/v1/balance").json()["balances"][1]
    assert (usd["available"], usd["pending"]) == (13_190, 0)


def test_balance_of_a_new_organization_is_empty_and_needs_the_ledger_scope(merchant, make_api):
    assert make_api(merchant, scopes=["ledger:read"]).get("/v1/balance").json()["balances"] == []
    response = make_api(merchant, scopes=["orders:read"]).get("/v1/balance")
    assert response.status_code == 403
    assert response.json()["code"] == "insufficient_scope"


@pytest.fixture
def history(merchant, customer, make_payment):
    """Three days of postings: an order, a processor fee, an adjustment, a eur order."""
    with time_machine.travel(T0, tick=False):
        first = paid(merchant, customer, 10_000, tax=2_000)
    with time_machine.travel(T0 + timedelta(days=1), tick=False):
        payment = make_payment(reference="order:fee")
        Payment.objects.filter(pk=payment.pk).update(status="succeeded", fee=88)
        fee = ledger_post_processor_fee(payment=payment, fee=88, currency="usd")
    with time_machine.travel(T0 + timedelta(days=1, seconds=1), tick=False):
        adjustment = ledger_post_balance_adjustment(
            organization=merchant,
            amount=-500,
            currency="usd",
            idempotency_key="adj:h",
            description="goodwill",
        )
    with time_machine.travel(T0 + timedelta(days=2), tick=False):
        eur = paid(merchant, customer, 3_000, currency="eur")
    return {"order": first, "fee": fee, "adjustment": adjustment, "eur_order": eur}


def ids(response) -> list[str]:
    assert response.status_code == 200, response.json()
    return [row["id"] for row in response.json()["results"]]


def test_transactions_list_with_entries_and_the_merchant_amount(history, api, django_assert_max_num_queries):
    with django_assert_max_num_queries(8):
        response = api.get("/v1/ledger/transactions")
    rows = response.json()["results"]
    assert [r["type"] for r in rows] == ["payment", "balance_adjustment", "processor_fee", "payment"]
    eur, adjustment, fee, order_tx = rows
    order = history["order"]
    assert order_tx["order_id"] == str(order.pk) and order_tx["currency"] == "usd"
    assert order_tx["merchant_amount"] == 12_000 - 2_000 - order.platform_fee
    assert sorted((e["account"], e["amount"]) for e in order_tx["entries"]) == sorted(
        [
            ("processor_cash", 12_000),
            ("tax_payable", -2_000),
            ("platform_revenue", -order.platform_fee),
            ("merchant_balance", -(12_000 - 2_000 - order.platform_fee)),
        ]
    )
    assert fee["merchant_amount"] == 0 and fee["payment_id"] == str(history["fee"].payment_id)
    assert adjustment["merchant_amount"] == -500 and adjustment["description"] == "goodwill"
    assert eur["currency"] == "eur" and eur["merchant_amount"] > 0

    # No N+1: forty more transactions, the same number of queries.
    for n in range(40):
        ledger_post_balance_adjustment(
            organization=history["order"].organization, amount=100, currency="usd",
            idempotency_key=f"adj:many:{n}", description="",
        )  # fmt: skip
    with django_assert_max_num_queries(8):
        assert len(api.get("/v1/ledger/transactions?limit=50").json()["results"]) == 44


def test_transactions_filters(history, api):
    h = {k: str(v.pk) for k, v in history.items()}
    fee_tx, adj_tx = str(history["fee"].pk), str(history["adjustment"].pk)
    order_tx = str(LedgerTransaction.objects.get(order=history["order"]).pk)
    eur_tx = str(LedgerTransaction.objects.get(order=history["eur_order"]).pk)

    assert ids(api.get("/v1/ledger/transactions?type=processor_fee")) == [fee_tx]
    assert ids(api.get("/v1/ledger/transactions?type=processor_fee&type=balance_adjustment")) == [
        adj_tx,
        fee_tx,
    ]
    assert ids(api.get(f"/v1/ledger/transactions?order_id={h['order']}")) == [order_tx]
    assert ids(api.get("/v1/ledger/transactions?currency=eur")) == [eur_tx]
    assert ids(api.get("/v1/ledger/transactions?currency=EUR")) == [eur_tx]
    after = (T0 + timedelta(hours=12)).isoformat().replace("+00:00", "Z")
    before = (T0 + timedelta(days=2)).isoformat().replace("+00:00", "Z")
    assert ids(api.get("/v1/ledger/transactions", {"created_after": after, "created_before": before})) == [
        adj_tx,
        fee_tx,
    ]
    page = api.get("/v1/ledger/transactions?limit=1").json()
    assert [r["id"] for r in page["results"]] == [eur_tx] and "cursor=" in page["next"]
    detail = api.get(f"/v1/ledger/transactions/{order_tx}")
    assert detail.status_code == 200 and detail.json()["order_id"] == h["order"]

    bad = api.get("/v1/ledger/transactions?type=nonsense")
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "type"
    assert api.get("/v1/ledger/transactions?order_id=not-a-uuid").status_code == 400
    assert api.get("/v1/ledger/transactions/not-a-uuid").status_code == 404


def test_another_organization_sees_none_of_it(history, make_org, make_api):
    intruder = make_api(make_org("Intruder"))
    victim_tx = LedgerTransaction.objects.filter(organization=history["order"].organization).first()
    assert intruder.get("/v1/ledger/transactions").json()["results"] == []
    assert intruder.get(f"/v1/ledger/transactions/{victim_tx.pk}").status_code == 404
    assert intruder.get(f"/v1/ledger/transactions?order_id={history['order'].pk}").json()["results"] == []
    assert intruder.get("/v1/balance").json()["balances"] == []


def test_openapi_documents_balance_and_transactions(api):
    schema = api.get("/v1/openapi.json").json()
    balance = schema["paths"]["/v1/balance"]["get"]
    ref = balance["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    component = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert {"balances", "payout_hold_days", "as_of"} <= set(component["properties"])
    listing = schema["paths"]["/v1/ledger/transactions"]["get"]
    params = {p["name"] for p in listing["parameters"]}
    assert {"type", "created_after", "created_before", "order_id", "currency", "cursor"} <= params
