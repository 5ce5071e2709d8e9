"""/v1/balance explains a negative available balance: what is held, what refunds and
disputes took, and that the parts add up to the figures."""

import json
from datetime import datetime, timedelta

import pytest
import time_machine

from accounts.models import Organization
from billing.disputes.services import dispute_apply_snapshot
from billing.refunds.services import refund_create
from tests.disputes import events
from tests.disputes.conftest import pay_order

pytestmark = pytest.mark.django_db

T0 = datetime.fromisoformat("2027-03-01T12:00:00+00:00")
OUTFLOWS = ("refunds", "disputes", "payouts", "other")


@pytest.fixture
def merchant(org):
    Organization.objects.filter(pk=org.pk).update(
        payment_processor="manual", platform_fee_bps=500, platform_fee_fixed=30, payout_hold_days=7
    )
    org.refresh_from_db()
    return org


def assert_adds_up(row: dict) -> None:
    parts = row["breakdown"]
    assert row["available"] == parts["settled"] + sum(parts[name] for name in OUTFLOWS)
    assert row["balance"] == row["available"] + parts["held"]
    assert row["pending"] == parts["held"]


def test_a_refund_and_a_dispute_inside_the_hold_make_available_negative(merchant, customer, api):
    with time_machine.travel(T0, tick=False):
        pay_order(merchant, customer, amount=1_000, tax=0)  # settled by day 8: merchant gets 920
    with time_machine.travel(T0 + timedelta(days=8), tick=False):
        refunded, _ = pay_order(merchant, customer, amount=10_000, tax=0)  # fee 530: 9470 held
        _, disputed = pay_order(merchant, customer, amount=5_000, tax=0)  # fee 280: 4720 held
        refund_create(order=refunded, amount=None, reason="requested_by_customer")
        dispute_apply_snapshot(
            payload=events.dispute(disputed, withdrawn=True),
            observed_at=events.T0_AT,
            event_type="charge.dispute.created",
        )
    with time_machine.travel(T0 + timedelta(days=8, hours=1), tick=False):
        response = api.get("/v1/balance")
    assert response.status_code == 200, response.json()
    (usd,) = response.json()["balances"]
    dispute_fee = merchant.dispute_fee  # the organization's fee stands in for a manual payment
    assert usd["breakdown"] == {
        "hold_started_at": "2027-03-02T13:00:00Z",
        "settled": 920,
        "held": 9_470 + 4_720,
        "refunds": -10_000,  # the platform keeps its fee: the merchant gives back the whole price
        "disputes": -(5_000 + dispute_fee),
        "payouts": 0,
        "other": 0,
    }
    assert usd["available"] == 920 - 10_000 - 5_000 - dispute_fee < 0
    assert usd["balance"] == 920 + 9_470 + 4_720 - 10_000 - 5_000 - dispute_fee
    assert_adds_up(usd)

    # Once the hold has passed, the payments have settled and cover what went out.
    with time_machine.travel(T0 + timedelta(days=16), tick=False):
        (later,) = api.get("/v1/balance").json()["balances"]
    assert later["breakdown"]["held"] == 0 and later["available"] == later["balance"]
    assert later["breakdown"]["settled"] == later["balance"]
    assert_adds_up(later)


def test_the_openapi_document_describes_the_breakdown(api):
    schema = api.get("/v1/openapi.json").json()
    components = schema["components"]["schemas"]
    currency_balance = next(c for c in components.values() if "in_transit" in c.get("properties", {}))
    ref = currency_balance["properties"]["breakdown"]
    name = (ref.get("$ref") or ref["allOf"][0]["$ref"]).rsplit("/", 1)[1]
    assert set(components[name]["properties"]) == {
        "hold_started_at", "settled", "held", "refunds", "disputes", "payouts", "other",
    }  # fmt: skip
    assert "available = settled + refunds + disputes + payouts + other" in json.dumps(currency_balance)
