"""/v1/license-keys: list with filters, get with activations, update, revoke, one activation;
scoped to the token's organization and its benefits scopes."""

import uuid
from datetime import datetime

import pytest

from benefits.license_keys import services
from core.models import AuditEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def benefit(make_benefit):
    return make_benefit(activations={"limit": 2}, limit_usage=100)


@pytest.fixture
def key(benefit, make_key):
    return make_key(benefit, email="first@example.com")


def test_list_and_filters(api, key, benefit, make_benefit, make_key):
    other = make_key(make_benefit(), email="second@example.com")
    services.license_key_update(license_key=other, status="disabled")
    listed = api.get("/v1/license-keys").json()["results"]
    assert {k["id"] for k in listed} == {str(key.pk), str(other.pk)}
    assert [k["id"] for k in api.get(f"/v1/license-keys?benefit_id={benefit.pk}").json()["results"]] == [
        str(key.pk)
    ]
    assert [
        k["id"] for k in api.get(f"/v1/license-keys?customer_id={other.customer_id}").json()["results"]
    ] == [str(other.pk)]
    assert [k["id"] for k in api.get("/v1/license-keys?status=disabled").json()["results"]] == [str(other.pk)]
    assert api.get("/v1/license-keys?status=lost").status_code == 400
    assert api.get("/v1/license-keys?benefit_id=nope").status_code == 400
    assert api.get("/v1/license-keys?colour=red").status_code == 400


def test_another_organizations_keys_are_invisible(make_org, make_api, key):
    intruder = make_api(make_org("Intruder"))
    assert intruder.get("/v1/license-keys").json()["results"] == []
    assert intruder.get(f"/v1/license-keys/{key.pk}").status_code == 404
    assert (
        intruder.patch(f"/v1/license-keys/{key.pk}", {"status": "disabled"}, format="json").status_code == 404
    )
    assert intruder.post(f"/v1/license-keys/{key.pk}/revoke", {}, format="json").status_code == 404
    key.refresh_from_db()
    assert key.status == "granted"


def test_get_with_activations_and_one_activation(api, public, key):
    activation = services.license_key_activate(
        organization_id=key.organization_id, key=key.key, label="laptop"
    )
    data = api.get(f"/v1/license-keys/{key.pk}").json()
    assert (data["key"], data["activations_count"]) == (key.key, 1)
    assert [a["id"] for a in data["activations"]] == [str(activation.pk)]
    one = api.get(f"/v1/license-keys/{key.pk}/activations/{activation.pk}")
    assert one.status_code == 200
    assert (one.json()["label"], one.json()["deactivated_at"]) == ("laptop", None)
    assert api.get(f"/v1/license-keys/{key.pk}/activations/{uuid.uuid4()}").status_code == 404
    assert api.get(f"/v1/license-keys/{key.pk}/activations/not-an-id").status_code == 404


def test_update_limits_usage_expiry_and_status(api, key):
    response = api.patch(
        f"/v1/license-keys/{key.pk}",
        {"limit_activations": 5, "limit_usage": 10, "usage": 4, "expires_at": "2030-01-01T00:00:00Z"},
        format="json",
    )
    assert response.status_code == 200, response.json()
    key.refresh_from_db()
    assert (key.limit_activations, key.limit_usage, key.usage) == (5, 10, 4)
    assert key.expires_at == datetime.fromisoformat("2030-01-01T00:00:00+00:00")
    entry = AuditEntry.objects.get(action="license_key.update")
    assert entry.actor_kind == "token"
    assert entry.data["after"]["usage"] == 4
    assert api.patch(f"/v1/license-keys/{key.pk}", {"status": "disabled"}, format="json").json()[
        "status"
    ] == ("disabled")
    cleared = api.patch(
        f"/v1/license-keys/{key.pk}", {"limit_usage": None, "expires_at": None}, format="json"
    )
    assert (cleared.json()["limit_usage"], cleared.json()["expires_at"]) == (None, None)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"status": "revoked"}, "status"),
        ({"limit_activations": 0}, "limit_activations"),
        ({"limit_activations": 51}, "limit_activations"),
        ({"limit_usage": 0}, "limit_usage"),
        ({"usage": -1}, "usage"),
        ({"usage": 101}, "usage"),  # over the key's limit_usage
        ({"limit_usage": 1, "usage": 2}, "usage"),
        ({"expires_at": "soon"}, "expires_at"),
    ],
)
def test_bad_updates_are_400_and_change_nothing(api, key, payload, field):
    before = api.get(f"/v1/license-keys/{key.pk}").json()
    response = api.patch(f"/v1/license-keys/{key.pk}", payload, format="json")
    assert response.status_code == 400, response.json()
    assert [e["field"] for e in response.json()["errors"]] == [field]
    assert api.get(f"/v1/license-keys/{key.pk}").json() == before


def test_lowering_limit_usage_below_the_usage_is_refused(api, key):
    api.patch(f"/v1/license-keys/{key.pk}", {"usage": 50}, format="json")
    response = api.patch(f"/v1/license-keys/{key.pk}", {"limit_usage": 10}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "limit_usage"


def test_revoke_is_final(api, key):
    response = api.post(f"/v1/license-keys/{key.pk}/revoke", {"reason": "leaked"}, format="json")
    assert (response.status_code, response.json()["status"]) == (200, "revoked")
    assert AuditEntry.objects.get(action="license_key.revoke").reason == "leaked"
    again = api.post(f"/v1/license-keys/{key.pk}/revoke", {}, format="json")
    assert (again.status_code, again.json()["code"]) == (409, "license_key_revoked")
    enable = api.patch(f"/v1/license-keys/{key.pk}", {"status": "granted"}, format="json")
    assert (enable.status_code, enable.json()["code"]) == (409, "license_key_revoked")
    key.grant.refresh_from_db()
    assert key.grant.status == "granted"  # the grant stays


def test_scopes(make_api, org, key):
    reader = make_api(org, scopes=("benefits:read",))
    assert reader.get(f"/v1/license-keys/{key.pk}").status_code == 200
    assert (
        reader.patch(f"/v1/license-keys/{key.pk}", {"status": "disabled"}, format="json").status_code == 403
    )
    assert reader.post(f"/v1/license-keys/{key.pk}/revoke", {}, format="json").status_code == 403
    stranger = make_api(org, scopes=("customers:read",))
    assert stranger.get("/v1/license-keys").status_code == 403
