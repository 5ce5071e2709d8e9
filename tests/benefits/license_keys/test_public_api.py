"""The public license key API (no token): validate, activate, deactivate, and every refusal
a clear 4xx that counts nothing and writes nothing."""

import uuid
from datetime import timedelta

import pytest
import time_machine

from benefits.license_keys import services
from benefits.license_keys.models import LicenseKey, LicenseKeyActivation
from core import clock

pytestmark = pytest.mark.django_db

VALIDATE = "/v1/customer-portal/license-keys/validate"
ACTIVATE = "/v1/customer-portal/license-keys/activate"
DEACTIVATE = "/v1/customer-portal/license-keys/deactivate"


def counters(key: LicenseKey) -> tuple:
    key.refresh_from_db()
    return key.usage, key.validations, key.last_validated_at, key.activations_count, key.status


def body(license_key: LicenseKey, /, **extra) -> dict:
    return {"key": license_key.key, "organization_id": str(license_key.organization_id), **extra}


@pytest.fixture
def key(make_benefit, make_key):
    return make_key(make_benefit(prefix="APP", activations={"limit": 2}, limit_usage=10))


def test_validate_answers_the_key_and_counts_it(public, key):
    response = public.post(VALIDATE, body(key, increment_usage=3), format="json")
    assert response.status_code == 200, response.json()
    data = response.json()
    assert (data["id"], data["key"], data["status"], data["usage"], data["limit_usage"]) == (
        str(key.pk), key.key, "granted", 3, 10,
    )  # fmt: skip
    assert (data["validations"], data["limit_activations"], data["activation"]) == (1, 2, None)
    usage, validations, last, _, _ = counters(key)
    assert (usage, validations, last is not None) == (3, 1, True)


def test_a_typed_key_is_found_whatever_its_case_and_spaces(public, key):
    response = public.post(VALIDATE, body(key, key=f"  {key.key.lower()} "), format="json")
    assert response.status_code == 200


def test_unknown_key_and_another_organizations_key_get_the_same_404(
    public, key, make_org, make_benefit, make_key
):
    other = make_org("Other")
    theirs = make_key(make_benefit(organization=other), organization=other)
    before = counters(theirs)
    unknown = public.post(VALIDATE, body(key, key="APP-0000-0000-0000-0000"), format="json")
    foreign = public.post(VALIDATE, body(key, key=theirs.key), format="json")  # our organization, their key
    assert unknown.status_code == foreign.status_code == 404
    assert unknown.json() == foreign.json()
    assert foreign.json()["code"] == "license_key_not_found"
    assert counters(theirs) == before


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"organization_id": "not-a-uuid"}, "organization_id"),
        ({"key": ""}, "key"),
        ({"key": "A" * 101}, "key"),
        ({"increment_usage": -1}, "increment_usage"),
        ({"activation_id": "x"}, "activation_id"),
        ({"conditions": {f"k{i}": i for i in range(51)}}, "conditions"),
    ],
)
def test_malformed_bodies_are_400_on_their_field(public, key, payload, field):
    before = counters(key)
    response = public.post(VALIDATE, {**body(key), **payload}, format="json")
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == [field]
    assert counters(key) == before


def refused(public, url, payload, key, status, code):
    before = counters(key)
    activations = LicenseKeyActivation.objects.count()
    response = public.post(url, payload, format="json")
    assert response.status_code == status, response.json()
    assert response.json()["code"] == code
    assert counters(key) == before  # nothing counted
    assert LicenseKeyActivation.objects.count() == activations  # nothing written
    return response


def test_disabled_key_is_refused(public, key):
    services.license_key_update(license_key=key, status="disabled")
    refused(public, VALIDATE, body(key, increment_usage=1), key, 403, "license_key_disabled")
    refused(public, ACTIVATE, body(key, label="laptop"), key, 403, "license_key_disabled")


def test_revoked_key_is_refused(public, key):
    services.license_key_revoke(license_key=key)
    refused(public, VALIDATE, body(key), key, 403, "license_key_revoked")
    refused(public, ACTIVATE, body(key, label="laptop"), key, 403, "license_key_revoked")


def test_expired_key_is_refused(public, make_benefit, make_key):
    key = make_key(make_benefit(expires={"ttl": 1, "timeframe": "day"}, activations={"limit": 1}))
    with time_machine.travel(key.expires_at - timedelta(seconds=1), tick=False):
        assert public.post(VALIDATE, body(key), format="json").status_code == 200
    with time_machine.travel(key.expires_at, tick=False):
        refused(public, VALIDATE, body(key), key, 403, "license_key_expired")
        refused(public, ACTIVATE, body(key, label="laptop"), key, 403, "license_key_expired")


def test_usage_over_the_limit_is_refused_and_counts_nothing(public, key):
    assert public.post(VALIDATE, body(key, increment_usage=8), format="json").status_code == 200
    response = refused(public, VALIDATE, body(key, increment_usage=3), key, 403, "usage_limit_reached")
    assert response.json()["errors"][0]["field"] == "increment_usage"
    assert public.post(VALIDATE, body(key, increment_usage=2), format="json").json()["usage"] == 10


def test_benefit_or_customer_of_another_key_is_404(public, key):
    refused(public, VALIDATE, body(key, benefit_id=str(uuid.uuid4())), key, 404, "license_key_not_found")
    refused(public, VALIDATE, body(key, customer_id=str(uuid.uuid4())), key, 404, "license_key_not_found")
    ok = body(key, benefit_id=str(key.benefit_id), customer_id=str(key.customer_id))
    assert public.post(VALIDATE, ok, format="json").status_code == 200


def test_activate_validate_and_deactivate(public, key):
    response = public.post(
        ACTIVATE,
        body(key, label="laptop", conditions={"machine": "m-1"}, meta={"os": "linux"}),
        format="json",
    )
    assert response.status_code == 200, response.json()
    activation = response.json()
    assert (activation["label"], activation["meta"], activation["license_key"]["activations_count"]) == (
        "laptop", {"os": "linux"}, 1,
    )  # fmt: skip
    checked = public.post(
        VALIDATE, body(key, activation_id=activation["id"], conditions={"machine": "m-1"}), format="json"
    )
    assert checked.status_code == 200
    assert checked.json()["activation"]["id"] == activation["id"]
    refused(
        public,
        VALIDATE,
        body(key, activation_id=activation["id"], conditions={"machine": "m-2"}),
        key,
        403,
        "conditions_mismatch",
    )
    gone = public.post(DEACTIVATE, body(key, activation_id=activation["id"]), format="json")
    assert gone.status_code == 204
    assert counters(key)[3] == 0
    assert LicenseKeyActivation.objects.get().deactivated_at is not None
    # A deactivated activation is unknown from now on.
    refused(public, VALIDATE, body(key, activation_id=activation["id"]), key, 404, "activation_not_found")
    refused(public, DEACTIVATE, body(key, activation_id=activation["id"]), key, 404, "activation_not_found")


def test_activation_limit(public, key):
    for label in ("one", "two"):
        assert public.post(ACTIVATE, body(key, label=label), format="json").status_code == 200
    refused(public, ACTIVATE, body(key, label="three"), key, 403, "activation_limit_reached")
    assert LicenseKeyActivation.objects.filter(license_key=key).count() == 2


def test_a_key_without_activations_is_not_activated(public, make_benefit, make_key):
    key = make_key(make_benefit())
    refused(public, ACTIVATE, body(key, label="laptop"), key, 403, "activations_not_supported")


def test_unknown_activation_is_404(public, key):
    refused(public, VALIDATE, body(key, activation_id=str(uuid.uuid4())), key, 404, "activation_not_found")
    refused(public, DEACTIVATE, body(key, activation_id=str(uuid.uuid4())), key, 404, "activation_not_found")


def test_deactivation_by_the_customer_can_be_turned_off(public, make_benefit, make_key):
    key = make_key(make_benefit(activations={"limit": 1, "customer_can_deactivate": False}))
    activation = public.post(ACTIVATE, body(key, label="laptop"), format="json").json()
    refused(
        public, DEACTIVATE, body(key, activation_id=activation["id"]), key, 403, "deactivation_not_allowed"
    )
    assert LicenseKeyActivation.objects.get().deactivated_at is None


def test_activation_of_another_key_is_unknown(public, key, make_benefit, make_key):
    other = make_key(make_benefit(activations={"limit": 1}))
    theirs = public.post(ACTIVATE, body(other, label="x"), format="json").json()
    refused(public, VALIDATE, body(key, activation_id=theirs["id"]), key, 404, "activation_not_found")
    refused(public, DEACTIVATE, body(key, activation_id=theirs["id"]), key, 404, "activation_not_found")


def test_public_endpoints_take_no_token_and_no_other_method(public, key):
    assert public.get(VALIDATE).status_code == 405
    assert public.post(VALIDATE + "?x=1", body(key), format="json").status_code == 400


def test_key_expiry_is_checked_with_the_clock(public, make_benefit, make_key):
    key = make_key(make_benefit())
    services.license_key_update(license_key=key, expires_at=clock.now() - timedelta(seconds=1))
    refused(public, VALIDATE, body(key), key, 403, "license_key_expired")
