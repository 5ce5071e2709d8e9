"""The license_keys strategy through the grant engine: grant makes a key, revoke revokes it,
a re-grant re-enables the same key with a fresh expiry, an update applies the benefit's new
limits, and invalid settings are refused on their field."""

import re
from datetime import datetime, timedelta

import pytest
import time_machine

from benefits import grants
from benefits import services as benefit_services
from benefits.license_keys import services
from benefits.license_keys.models import LicenseKey
from benefits.models import BenefitGrant
from benefits.strategies import strategy_for
from core.errors import InvalidInput
from tests.benefits.license_keys.conftest import process_all

pytestmark = pytest.mark.django_db

START = datetime.fromisoformat("2027-03-01T10:00:00+00:00")


def test_grant_makes_a_key_with_the_benefits_settings(make_benefit, make_key):
    benefit = make_benefit(
        prefix="myapp",
        activations={"limit": 3},
        limit_usage=100,
        expires={"ttl": 1, "timeframe": "year"},
    )
    assert benefit.properties["prefix"] == "MYAPP"
    with time_machine.travel(START, tick=False):
        key = make_key(benefit)
    assert re.fullmatch(r"MYAPP-[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}", key.key)
    assert (key.status, key.limit_activations, key.limit_usage) == ("granted", 3, 100)
    assert key.expires_at == datetime.fromisoformat("2028-03-01T10:00:00+00:00")
    grant = key.grant
    assert grant.status == "granted"
    # Webhook payloads carry the grant's properties: the key's id and masked form, never the key.
    assert grant.properties == {"license_key_id": str(key.pk), "display_key": f"MYAPP-****-{key.key[-4:]}"}
    assert key.key not in str(grant.properties)


def test_uuid_format_without_prefix_and_no_expiry(make_benefit, make_key):
    key = make_key(make_benefit(format="uuid4"))
    assert re.fullmatch(r"[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}", key.key)
    assert (key.expires_at, key.limit_activations, key.limit_usage, key.prefix) == (None, None, None, "")


def test_processing_again_makes_no_second_key(make_benefit, make_key):
    key = make_key(make_benefit())
    grants.grants_reconcile(subscription=key.grant.subscription, reason="again")
    process_all()
    assert LicenseKey.objects.count() == 1


def test_revoke_then_grant_again_reenables_the_same_key_with_a_fresh_expiry(make_benefit, make_key):
    benefit = make_benefit(expires={"ttl": 30, "timeframe": "day"})
    with time_machine.travel(START, tick=False):
        key = make_key(benefit)
    grant = key.grant
    with time_machine.travel(START + timedelta(days=5), tick=False):
        benefit_services.benefit_grant_revoke(grant=grant, reason="chargeback")
        process_all()
    key.refresh_from_db()
    assert key.status == "revoked"
    later = START + timedelta(days=40)
    with time_machine.travel(later, tick=False):
        benefit_services.benefit_grant_grant(grant=BenefitGrant.objects.get(pk=grant.pk), reason="resolved")
        process_all()
    again = LicenseKey.objects.get()
    assert (again.pk, again.key, again.status) == (key.pk, key.key, "granted")
    assert again.expires_at == later + timedelta(days=30)


def test_cycle_extends_the_expiry_from_the_new_period(make_benefit, make_key):
    benefit = make_benefit(expires={"ttl": 1, "timeframe": "month"})
    with time_machine.travel(START, tick=False):
        key = make_key(benefit)
    subscription = key.grant.subscription
    renewed_at = START + timedelta(days=31)
    subscription.current_period_start = renewed_at  # what a renewal wrote
    subscription.save(update_fields=["current_period_start"])
    with time_machine.travel(renewed_at + timedelta(minutes=3), tick=False):
        grants.grants_request_cycle(subscription=subscription)
        process_all()
    key.refresh_from_db()
    assert key.expires_at == datetime.fromisoformat("2027-05-01T10:00:00+00:00")
    assert key.grant.cycle_requested is False


def test_update_applies_new_limits_and_expiry_rule_to_existing_keys(make_benefit, make_key):
    benefit = make_benefit(activations={"limit": 1}, limit_usage=10)
    with time_machine.travel(START, tick=False):
        key = make_key(benefit)
    with time_machine.travel(START + timedelta(days=2), tick=False):
        benefit_services.benefit_update(
            benefit=benefit,
            properties={
                "activations": {"limit": 5},
                "limit_usage": 50,
                "expires": {"ttl": 1, "timeframe": "year"},
            },
        )
        process_all()
    key.refresh_from_db()
    assert (key.limit_activations, key.limit_usage, key.status) == (5, 50, "granted")
    assert key.expires_at == datetime.fromisoformat("2028-03-01T10:00:00+00:00")  # from the grant


@pytest.mark.parametrize(
    ("properties", "field"),
    [
        ({"prefix": "no spaces"}, "properties.prefix"),
        ({"prefix": "X" * 17}, "properties.prefix"),
        ({"format": "words"}, "properties.format"),
        ({"activations": {"limit": 0}}, "properties.activations.limit"),
        ({"activations": {"limit": 51}}, "properties.activations.limit"),
        ({"limit_usage": 0}, "properties.limit_usage"),
        ({"expires": {"ttl": 1, "timeframe": "week"}}, "properties.expires.timeframe"),
        ({"expires": {"ttl": 0, "timeframe": "day"}}, "properties.expires.ttl"),
    ],
)
def test_bad_settings_are_refused_on_their_field(org, properties, field):
    with pytest.raises(InvalidInput) as refused:
        benefit_services.benefit_create(
            organization=org, type="license_keys", description="Key", properties=properties
        )
    assert refused.value.field == field


def test_customer_view_shows_the_key_its_limits_and_activations(
    make_benefit, make_key, django_assert_max_num_queries
):
    key = make_key(make_benefit(activations={"limit": 2}, limit_usage=5))
    activation = services.license_key_activate(organization_id=key.organization_id, key=key.key, label="pc")
    grant, benefit = key.grant, key.benefit
    with django_assert_max_num_queries(2):
        view = strategy_for("license_keys").customer_view(grant=grant, benefit=benefit)
    assert (view["key"], view["status"], view["limit_usage"], view["limit_activations"]) == (
        key.key,
        "granted",
        5,
        2,
    )
    assert (view["usage"], view["expires_at"]) == (0, None)
    assert [a["id"] for a in view["activations"]] == [str(activation.pk)]
