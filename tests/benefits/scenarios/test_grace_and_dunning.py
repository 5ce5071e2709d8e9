"""A failed renewal keeps access for the organization's grace days counted from the first
failure, not a minute less or more; a payment inside the grace keeps the grant (never
revoked); a payment after the revocation grants it again. Dunning that gives up (cancel or
unpaid) revokes once the grace is over."""

from datetime import timedelta

import pytest
import time_machine

from benefits.models import BenefitGrant
from billing.orders.models import Order
from billing.payments import services as payment_services
from billing.subscriptions.models import Subscription
from core.events.models import Event
from tests.benefits.scenarios.conftest import (
    DECLINES,
    GOOD,
    at,
    buy,
    card,
    events_of,
    org_set,
    run_jobs,
    set_default_card,
)

pytestmark = [pytest.mark.localstripe, pytest.mark.django_db(transaction=True)]

START = at("2027-05-10T09:00:00+00:00")


def fail_first_renewal(org, monthly, stripe_client, *, grace_days: int):
    org_set(org, benefit_grace_days=grace_days)
    buy(org, monthly, card(stripe_client), START)
    subscription = Subscription.objects.get()
    set_default_card(stripe_client, subscription, DECLINES)
    renewal = subscription.current_period_end + timedelta(minutes=1)
    run_jobs(renewal)
    subscription.refresh_from_db()
    assert subscription.status == "past_due" and subscription.past_due_at == renewal
    return subscription, renewal


def pay_with_a_new_card(stripe_client, subscription, when) -> None:
    good = card(stripe_client, GOOD)
    stripe_client.PaymentMethod.attach(good, customer=subscription.customer.stripe_customer_id)
    with time_machine.travel(when, tick=False):
        payment_services.customer_payment_method_saved(
            processor_customer_id=subscription.customer.stripe_customer_id, payment_method_id=good
        )
    subscription.refresh_from_db()
    assert subscription.status == "active"


def test_grace_revokes_after_seven_days_not_before_and_payment_grants_again(org, monthly, stripe_client):
    subscription, renewal = fail_first_renewal(org, monthly, stripe_client, grace_days=7)
    grant = BenefitGrant.objects.get()
    assert grant.status == "granted"
    run_jobs(renewal + timedelta(days=2, minutes=1))  # the first retry fails too
    run_jobs(renewal + timedelta(days=7) - timedelta(minutes=1))
    grant.refresh_from_db()
    assert grant.status == "granted" and events_of("benefit_grant.revoked") == 0
    run_jobs(renewal + timedelta(days=7, minutes=1))
    grant.refresh_from_db()
    assert (grant.status, grant.revoke_reason) == ("revoked", "subscription unpaid after the grace period")
    assert events_of("benefit_grant.revoked", grant) == 1

    pay_with_a_new_card(stripe_client, subscription, renewal + timedelta(days=8))
    grant.refresh_from_db()
    assert (grant.status, grant.revoke_reason) == ("granted", "")
    assert events_of("benefit_grant.updated", grant) == 1  # granted again
    assert events_of("benefit_grant.created", grant) == 1
    run_jobs(renewal + timedelta(days=8, minutes=1))
    grant.refresh_from_db()
    assert grant.status == "granted" and events_of("benefit_grant.revoked", grant) == 1


def test_a_payment_inside_the_grace_keeps_the_grant(org, monthly, stripe_client):
    subscription, renewal = fail_first_renewal(org, monthly, stripe_client, grace_days=7)
    grant = BenefitGrant.objects.get()
    run_jobs(renewal + timedelta(days=2, minutes=1))
    pay_with_a_new_card(stripe_client, subscription, renewal + timedelta(days=6))
    assert subscription.benefits_revoke_at is None
    for when in (renewal + timedelta(days=7, minutes=1), renewal + timedelta(days=10)):
        run_jobs(when)
        grant.refresh_from_db()
        assert grant.status == "granted"
    assert events_of("benefit_grant.revoked") == 0 and events_of("benefit_grant.updated") == 0
    assert not Event.objects.filter(type="subscription.revoked").exists()


@pytest.mark.parametrize("final_action", ["cancel", "unpaid"])
def test_exhausted_dunning_revokes_once_the_grace_is_over(org, monthly, stripe_client, final_action):
    org_set(org, dunning_final_action=final_action)
    subscription, renewal = fail_first_renewal(org, monthly, stripe_client, grace_days=30)
    grant = BenefitGrant.objects.get()
    order = Order.objects.get(billing_reason="subscription_cycle")
    for _ in range(4):  # the four retries, all declined: dunning gives up on the last
        order.refresh_from_db()
        run_jobs(order.next_payment_attempt_at + timedelta(minutes=1))
    subscription.refresh_from_db()
    order.refresh_from_db()
    assert subscription.status == ("canceled" if final_action == "cancel" else "unpaid")
    assert order.next_payment_attempt_at is None
    grant.refresh_from_db()
    assert grant.status == "granted"  # gave up inside the grace: access lasts until its end
    grace_end = renewal + timedelta(days=30)
    assert subscription.benefits_revoke_at == grace_end
    run_jobs(grace_end - timedelta(minutes=1))
    grant.refresh_from_db()
    assert grant.status == "granted"
    run_jobs(grace_end + timedelta(minutes=1))
    grant.refresh_from_db()
    assert grant.status == "revoked" and events_of("benefit_grant.revoked", grant) == 1
    assert Event.objects.filter(type="subscription.revoked").count() == 1


def test_dunning_giving_up_after_the_grace_revoked_records_revoked_once(org, monthly, stripe_client):
    """The grace (7 days) is over long before dunning gives up (21 days): access went at the
    grace's end, and giving up does not revoke (nor record ``subscription.revoked``) again."""
    subscription, renewal = fail_first_renewal(org, monthly, stripe_client, grace_days=7)
    grant = BenefitGrant.objects.get()
    order = Order.objects.get(billing_reason="subscription_cycle")
    for _ in range(4):
        order.refresh_from_db()
        run_jobs(order.next_payment_attempt_at + timedelta(minutes=1))
    subscription.refresh_from_db()
    grant.refresh_from_db()
    assert (subscription.status, grant.status) == ("canceled", "revoked")
    assert renewal + timedelta(days=7) < grant.revoked_at < renewal + timedelta(days=7, minutes=5)
    run_jobs(renewal + timedelta(days=40))
    assert events_of("benefit_grant.revoked", grant) == 1
    assert Event.objects.filter(type="subscription.revoked").count() == 1
