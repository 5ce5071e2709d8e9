"""GET /v1/events and /v1/events/{id}: the organization's events, newest first, filterable,
cursor-paginated; another organization's events do not exist for it."""

import pytest

from accounts import services as account_services
from core.events.models import Event

pytestmark = pytest.mark.django_db


@pytest.fixture
def history(org):
    ada = account_services.customer_create(organization=org, email="ada@example.com", name="Ada")
    account_services.customer_update(customer=ada, name="Ada Lovelace")
    bob = account_services.customer_create(organization=org, email="bob@example.com")
    return ada, bob


def test_lists_newest_first_and_filters(api, history):
    ada, bob = history
    listed = api.get("/v1/events").json()
    assert [(e["type"], e["object_id"]) for e in listed["results"]] == [
        ("customer.created", str(bob.pk)),
        ("customer.updated", str(ada.pk)),
        ("customer.created", str(ada.pk)),
    ]
    first = listed["results"][0]
    assert first["id"].startswith("evt_") and first["object_type"] == "customer"
    assert set(first) == {"id", "type", "created_at", "organization_id", "object_type", "object_id", "data"}
    assert first["data"] == api.get(f"/v1/customers/{bob.pk}").json()

    only = api.get("/v1/events", {"type": "customer.updated"}).json()["results"]
    assert [e["data"]["name"] for e in only] == ["Ada Lovelace"]
    of_ada = api.get("/v1/events", {"object_id": str(ada.pk), "object_type": "customer"}).json()["results"]
    assert [e["type"] for e in of_ada] == ["customer.updated", "customer.created"]


def test_pages_with_a_cursor(api, history):
    page = api.get("/v1/events", {"limit": 2}).json()
    assert len(page["results"]) == 2 and page["next"]
    rest = api.get(page["next"]).json()
    assert len(rest["results"]) == 1 and rest["next"] is None
    seen = [e["id"] for e in page["results"] + rest["results"]]
    assert len(set(seen)) == 3


def test_retrieves_one_event_by_its_id(api, history):
    event = Event.objects.filter(type="customer.updated").get()
    got = api.get(f"/v1/events/{event.public_id}")
    assert got.status_code == 200
    assert got.json()["id"] == event.public_id and got.json()["data"]["name"] == "Ada Lovelace"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"type": "customer.exploded"}, "type"),
        ({"object_type": "spaceship"}, "object_type"),
        ({"object_id": "x" * 65}, "object_id"),
        ({"colour": "red"}, "colour"),
        ({"cursor": "!!"}, "cursor"),
        ({"cursor": "cD1hYmM="}, "cursor"),  # p=abc: a position that is not an event id
        ({"limit": "0"}, "limit"),
    ],
)
def test_bad_parameters_are_a_400_naming_the_field(api, history, params, field):
    response = api.get("/v1/events", params)
    assert response.status_code == 400, response.json()
    assert field in {e["field"] for e in response.json()["errors"]}


@pytest.mark.parametrize("bad_id", ["42", "evt_nothex", "evt_" + "0" * 32, "cus_123"])
def test_unknown_or_malformed_ids_are_a_404(api, history, bad_id):
    response = api.get(f"/v1/events/{bad_id}")
    assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_another_organizations_events_are_invisible(history, make_org, make_api):
    other = make_api(make_org("Other"))
    event = Event.objects.first()
    assert other.get("/v1/events").json()["results"] == []
    assert other.get(f"/v1/events/{event.public_id}").status_code == 404


def test_reading_events_needs_the_events_scope(org, make_api, history):
    narrow = make_api(org, scopes=["customers:read"])
    response = narrow.get("/v1/events")
    assert response.status_code == 403 and "events:read" in response.json()["detail"]
