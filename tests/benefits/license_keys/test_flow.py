"""The whole path on a free monthly plan, committed as in production (events dispatched and
tasks run after commit): the purchase grants a key, each renewal pushes its expiry to the new
period plus the ttl, a cancellation at period end revokes the key at the period's end; after
every step re-running the jobs changes nothing."""

from datetime import datetime, timedelta

import pytest
import time_machine

from benefits import services as benefit_services
from benefits.license_keys.models import LicenseKey
from benefits.models import BenefitGrant
from benefits.tasks import sweep_grants
from billing.checkout import services as checkout_services
from billing.subscriptions import dunning, renewals
from billing.subscriptions import services as subscription_services
from billing.subscriptions.models import Subscription
from core.events.models import Event
from core.events.services import events_sweep

pytestmark = pytest.mark.django_db(transaction=True)

START = datetime.fromisoformat("2027-01-31T12:00:00+00:00")


def state() -> tuple:
    keys = sorted(LicenseKey.objects.values_list("key", "status", "expires_at", "usage"))
    grants = sorted(BenefitGrant.objects.values_list("status", "wanted", "next_attempt_at"))
    return keys, grants, Event.objects.count()


def run_jobs(when: datetime) -> None:
    with time_machine.travel(when, tick=False):
        for _ in range(2):
            renewals.renewals_run()
            dunning.dunning_run()
            dunning.benefits_revoke_due()
            events_sweep()
            sweep_grants()
        before = state()
        renewals.renewals_run()
        dunning.dunning_run()
        dunning.benefits_revoke_due()
        events_sweep()
        sweep_grants()
        assert state() == before


def test_purchase_renewals_and_cancellation(org, make_product):
    benefit = benefit_services.benefit_create(
        organization=org,
        type="license_keys",
        description="Pro license",
        properties={"prefix": "PRO", "expires": {"ttl": 7, "timeframe": "day"}},
    )
    product = make_product("Monthly", recurring="month", prices=[{"currency": "usd", "type": "free"}])
    benefit_services.product_benefits_set(product=product, benefits=[benefit])
    with time_machine.travel(START, tick=False):
        checkout = checkout_services.checkout_create(
            organization=org, product_id=product.pk, customer_email="buyer@example.com"
        )
        checkout_services.checkout_confirm(checkout=checkout)
    key = LicenseKey.objects.get()
    assert (key.status, key.expires_at) == ("granted", START + timedelta(days=7))
    assert Event.objects.filter(type="benefit_grant.created").count() == 1
    run_jobs(START + timedelta(days=1))

    subscription = Subscription.objects.get()
    first_end = subscription.current_period_end  # Feb 28: the anchor's month arithmetic
    run_jobs(first_end + timedelta(minutes=1))
    key.refresh_from_db()
    assert key.expires_at == first_end + timedelta(days=7)
    assert Event.objects.filter(type="benefit_grant.cycled").count() == 1

    subscription.refresh_from_db()
    second_end = subscription.current_period_end
    with time_machine.travel(second_end - timedelta(days=3), tick=False):
        subscription_services.subscription_cancel(subscription=subscription, reason="unused")
    run_jobs(second_end - timedelta(minutes=5))
    key.refresh_from_db()
    assert key.status == "granted"  # not before the period's end
    run_jobs(second_end + timedelta(minutes=1))
    key.refresh_from_db()
    assert (key.status, BenefitGrant.objects.get().status) == ("revoked", "revoked")
    assert LicenseKey.objects.count() == 1
