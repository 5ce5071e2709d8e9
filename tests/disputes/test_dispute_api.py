"""/v1/disputes: list with filters, retrieve, scopes and tenant isolation."""

import pytest
import time_machine

from accounts import services as account_services
from billing.disputes.models import Dispute
from billing.disputes.services import dispute_apply_snapshot
from core.api.scopes import ALL_SCOPES
from tests.disputes import events
from tests.disputes.conftest import pay_order

pytestmark = pytest.mark.django_db


def dispute_on(
    payment, status="needs_response", *, event_type="charge.dispute.created", **options
) -> Dispute:
    snapshot = events.dispute(payment, status, **options)
    return dispute_apply_snapshot(payload=snapshot, observed_at=events.T0_AT, event_type=event_type)


@pytest.fixture
def disputes(org, customer):
    with time_machine.travel("2027-05-01T10:00:00Z", tick=False):
        _, first = pay_order(org, customer)
        won = dispute_on(first, "won", id="dp_won", withdrawn=True, reinstated=True, reason="duplicate")
    with time_machine.travel("2027-05-03T10:00:00Z", tick=False):
        _, second = pay_order(org, customer, amount=5_000, tax=0)
        open_ = dispute_on(second, id="dp_open", withdrawn=True)
    return won, open_


def test_list_and_retrieve(api, disputes):
    won, open_ = disputes
    body = api.get("/v1/disputes").json()
    assert [row["id"] for row in body["results"]] == [str(open_.pk), str(won.pk)]  # newest first

    detail = api.get(f"/v1/disputes/{won.pk}").json()
    assert detail == {
        "id": str(won.pk),
        "status": "won",
        "reason": "duplicate",
        "amount": 12_000,
        "currency": "usd",
        "tax_amount": 2_000,
        "fee": 1_500,
        "fee_currency": "usd",
        "fee_source": "organization",  # a manual payment: the organization's setting
        "fee_refunded": 1_500,  # won: the fallback gives the whole fee back
        "order_id": str(won.order_id),
        "payment_id": str(won.payment_id),
        "customer_id": str(won.customer_id),
        "processor_dispute_id": "dp_won",
        "processor_charge_id": won.processor_charge_id,
        "evidence_due_by": detail["evidence_due_by"],
        "funds_withdrawn_at": "2027-05-01T10:00:00Z",
        "funds_reinstated_at": "2027-05-01T10:00:00Z",
        "closed_at": detail["closed_at"],
        "access_revoked_at": "2027-05-01T10:00:00Z",
        "access_restored_at": None,
        "access_note": "",
        "created_at": "2027-05-01T10:00:00Z",
        "updated_at": "2027-05-01T10:00:00Z",
    }
    assert detail["evidence_due_by"] and detail["closed_at"]


def test_filters(api, disputes):
    won, open_ = disputes

    def ids(**params):
        response = api.get("/v1/disputes", params)
        assert response.status_code == 200, response.json()
        return {row["id"] for row in response.json()["results"]}

    assert ids(status="won") == {str(won.pk)}
    assert ids(status="needs_response") == {str(open_.pk)}
    assert ids(order_id=str(open_.order_id)) == {str(open_.pk)}
    assert ids(customer_id=str(won.customer_id)) == {str(won.pk), str(open_.pk)}
    assert ids(created_after="2027-05-02T00:00:00Z") == {str(open_.pk)}
    assert ids(created_before="2027-05-02T00:00:00Z") == {str(won.pk)}


def test_bad_filters_are_field_errors(api, disputes):
    response = api.get("/v1/disputes", {"status": "escalated"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "status"
    response = api.get("/v1/disputes", {"order_id": "not-a-uuid"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "order_id"


def test_scope_and_other_organizations(disputes, make_org, make_api):
    won, _ = disputes
    other = make_org("Other")
    other_api = make_api(other)
    assert other_api.get("/v1/disputes").json()["results"] == []
    assert other_api.get(f"/v1/disputes/{won.pk}").status_code == 404

    no_scope = make_api(won.organization, scopes=[s for s in ALL_SCOPES if not s.startswith("disputes")])
    response = no_scope.get("/v1/disputes")
    assert response.status_code == 403
    assert response.json()["code"] == "insufficient_scope"
    read_only = make_api(won.organization, scopes=["disputes:read"])
    assert read_only.get(f"/v1/disputes/{won.pk}").status_code == 200


def test_a_customer_of_another_organization_cannot_be_matched(org, customer, make_org):
    """A dispute belongs to the organization of the disputed payment, nothing else."""
    other = make_org("Other")
    other_customer = account_services.customer_create(organization=other, email="x@example.com")
    _, payment = pay_order(other, other_customer)
    dispute = dispute_on(payment, withdrawn=True)
    assert dispute.organization == other and dispute.customer == other_customer
