"""A purchase grants; a refund with the revoke flag revokes (a subscription's refund also ends
it) and one without keeps; a cancellation at period end revokes at the period end and not a
minute before; taking the cancellation back keeps the grant."""

from datetime import timedelta

import pytest
import time_machine

from benefits.models import BenefitGrant
from billing.orders.models import Order
from billing.refunds import services as refund_services
from billing.subscriptions import services as subscription_services
from billing.subscriptions.models import Subscription
from tests.benefits.scenarios.conftest import at, buy, card, events_of, run_jobs

pytestmark = [pytest.mark.localstripe, pytest.mark.django_db(transaction=True)]

START = at("2027-03-01T10:00:00+00:00")


def test_a_one_time_purchase_grants_once(org, lifetime, stripe_client):
    buy(org, lifetime, card(stripe_client), START)
    grant = BenefitGrant.objects.get()
    assert (grant.status, grant.wanted, grant.next_attempt_at) == ("granted", "granted", None)
    assert (grant.order_id, grant.subscription_id) == (Order.objects.get().pk, None)
    run_jobs(START + timedelta(days=400))  # a one-time purchase holds for good
    grant.refresh_from_db()
    assert grant.status == "granted" and events_of("benefit_grant.created", grant) == 1


def test_a_subscription_grants_once(org, monthly, stripe_client):
    buy(org, monthly, card(stripe_client), START)
    grant = BenefitGrant.objects.get()
    assert (grant.status, grant.subscription_id) == ("granted", Subscription.objects.get().pk)
    run_jobs(START + timedelta(days=1))
    assert events_of("benefit_grant.created", grant) == 1


def test_one_time_refund_without_the_flag_keeps_with_it_revokes(org, lifetime, stripe_client):
    buy(org, lifetime, card(stripe_client), START)
    grant, order = BenefitGrant.objects.get(), Order.objects.get()
    with time_machine.travel(START + timedelta(hours=1), tick=False):
        refund_services.refund_create(order=order, amount=500, reason="requested_by_customer")
    run_jobs(START + timedelta(hours=2))
    grant.refresh_from_db()
    assert grant.status == "granted"
    with time_machine.travel(START + timedelta(hours=3), tick=False):
        refund_services.refund_create(
            order=order, amount=500, reason="requested_by_customer", revoke_benefits=True
        )
    grant.refresh_from_db()
    assert (grant.status, grant.revoke_reason) == ("revoked", "refunded with benefits revoked")
    run_jobs(START + timedelta(hours=4))
    assert events_of("benefit_grant.revoked", grant) == 1


def test_a_subscription_refund_with_the_flag_ends_it_and_revokes(org, monthly, stripe_client):
    buy(org, monthly, card(stripe_client), START)
    grant = BenefitGrant.objects.get()
    with time_machine.travel(START + timedelta(days=2), tick=False):
        refund_services.refund_create(order=Order.objects.get(), amount=500, reason="requested_by_customer")
    run_jobs(START + timedelta(days=2, hours=1))
    grant.refresh_from_db()
    assert grant.status == "granted"  # refunded, access kept
    with time_machine.travel(START + timedelta(days=3), tick=False):
        order = Order.objects.get()
        refund_services.refund_create(
            order=order, amount=order.total - order.refunded_amount, reason="fraudulent", revoke_benefits=True
        )
    subscription = Subscription.objects.get()
    grant.refresh_from_db()
    assert subscription.status == "canceled" and subscription.ended_at is not None
    assert grant.status == "revoked"
    run_jobs(START + timedelta(days=40))  # nothing renews it, nothing grants it again
    grant.refresh_from_db()
    assert grant.status == "revoked" and events_of("benefit_grant.revoked", grant) == 1
    assert Order.objects.count() == 1


def test_cancel_at_period_end_revokes_at_the_end_not_a_minute_before(org, monthly, stripe_client):
    buy(org, monthly, card(stripe_client), START)
    subscription = Subscription.objects.get()
    grant = BenefitGrant.objects.get()
    with time_machine.travel(START + timedelta(days=3), tick=False):
        subscription_services.subscription_cancel(subscription=subscription, reason="unused")
    run_jobs(START + timedelta(days=3, minutes=1))
    end = subscription.current_period_end
    run_jobs(end - timedelta(minutes=1))
    grant.refresh_from_db()
    assert grant.status == "granted" and events_of("benefit_grant.revoked") == 0
    run_jobs(end + timedelta(minutes=1))
    grant.refresh_from_db()
    assert (grant.status, grant.revoke_reason) == ("revoked", "subscription ended")
    assert events_of("benefit_grant.revoked", grant) == 1
    run_jobs(end + timedelta(days=35))
    assert events_of("benefit_grant.revoked", grant) == 1
    assert Order.objects.count() == 1  # the canceled subscription did not renew


def test_uncancel_before_the_end_keeps_the_grant(org, monthly, stripe_client):
    buy(org, monthly, card(stripe_client), START)
    subscription = Subscription.objects.get()
    grant = BenefitGrant.objects.get()
    with time_machine.travel(START + timedelta(days=3), tick=False):
        subscription_services.subscription_cancel(subscription=subscription, reason="unused")
    with time_machine.travel(START + timedelta(days=20), tick=False):
        subscription_services.subscription_uncancel(subscription=subscription)
    end = subscription.current_period_end
    run_jobs(end + timedelta(minutes=1))  # renews instead of ending
    grant.refresh_from_db()
    subscription.refresh_from_db()
    assert (subscription.status, grant.status) == ("active", "granted")
    assert events_of("benefit_grant.revoked") == 0 and events_of("benefit_grant.cycled", grant) == 1
