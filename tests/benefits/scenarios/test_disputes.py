"""A chargeback revokes the order's grants when the organization's ``dispute_revokes_access``
is on and keeps them when off; a won dispute with ``dispute_won_restores_access`` gives them
back (a one-time order's, and a subscription's, which the chargeback had ended)."""

from datetime import timedelta

import pytest
import time_machine

from benefits.models import BenefitGrant
from billing.payments.models import Payment
from billing.subscriptions.models import Subscription
from tests.benefits.scenarios.conftest import at, buy, card, events_of, org_set, run_jobs
from tests.disputes import events

pytestmark = [pytest.mark.localstripe, pytest.mark.django_db(transaction=True)]

START = at("2027-03-01T10:00:00+00:00")


def disputed(client, webhook_endpoint, when, *payloads) -> None:
    with time_machine.travel(when, tick=False):
        events.deliver(client, webhook_endpoint, *payloads)


@pytest.mark.parametrize("revokes", [True, False])
def test_a_chargeback_revokes_per_the_setting(
    org, lifetime, stripe_client, client, webhook_endpoint, revokes
):
    org_set(org, dispute_revokes_access=revokes)
    buy(org, lifetime, card(stripe_client), START)
    grant, payment = BenefitGrant.objects.get(), Payment.objects.get(status="succeeded")
    disputed(
        client, webhook_endpoint, START + timedelta(days=5), events.event("created", events.dispute(payment))
    )
    run_jobs(START + timedelta(days=5, minutes=1))
    grant.refresh_from_db()
    if revokes:
        assert (grant.status, grant.revoke_reason) == ("revoked", "payment disputed")
        assert events_of("benefit_grant.revoked", grant) == 1
    else:
        assert grant.status == "granted" and events_of("benefit_grant.revoked") == 0


def test_a_won_dispute_restores_a_one_time_grant(org, lifetime, stripe_client, client, webhook_endpoint):
    org_set(org, dispute_won_restores_access=True)
    buy(org, lifetime, card(stripe_client), START)
    grant, payment = BenefitGrant.objects.get(), Payment.objects.get(status="succeeded")
    created, withdrawn, updated, closed, reinstated = events.lifecycle(payment)
    disputed(client, webhook_endpoint, START + timedelta(days=5), created, withdrawn, updated)
    grant.refresh_from_db()
    assert grant.status == "revoked"
    disputed(client, webhook_endpoint, START + timedelta(days=20), closed, reinstated)
    grant.refresh_from_db()
    assert (grant.status, grant.revoke_reason) == ("granted", "")
    assert events_of("benefit_grant.updated", grant) == 1
    run_jobs(START + timedelta(days=20, minutes=1))
    assert events_of("benefit_grant.revoked", grant) == 1 and events_of("benefit_grant.updated", grant) == 1


def test_a_won_dispute_restores_the_subscription_and_its_grant(
    org, monthly, stripe_client, client, webhook_endpoint
):
    org_set(org, dispute_won_restores_access=True)
    buy(org, monthly, card(stripe_client), START)
    grant, payment = BenefitGrant.objects.get(), Payment.objects.get(status="succeeded")
    created, withdrawn, updated, closed, reinstated = events.lifecycle(payment)
    disputed(client, webhook_endpoint, START + timedelta(days=5), created, withdrawn, updated)
    grant.refresh_from_db()
    assert (Subscription.objects.get().status, grant.status) == ("canceled", "revoked")
    disputed(client, webhook_endpoint, START + timedelta(days=12), closed, reinstated)
    grant.refresh_from_db()
    assert (Subscription.objects.get().status, grant.status) == ("active", "granted")
    run_jobs(START + timedelta(days=12, minutes=1))
    assert events_of("benefit_grant.revoked", grant) == 1 and events_of("benefit_grant.updated", grant) == 1


def test_without_the_restore_setting_a_won_dispute_leaves_it_revoked(
    org, lifetime, stripe_client, client, webhook_endpoint
):
    buy(org, lifetime, card(stripe_client), START)
    grant, payment = BenefitGrant.objects.get(), Payment.objects.get(status="succeeded")
    disputed(client, webhook_endpoint, START + timedelta(days=5), *events.lifecycle(payment))
    run_jobs(START + timedelta(days=6))
    grant.refresh_from_db()
    assert grant.status == "revoked" and events_of("benefit_grant.updated") == 0
