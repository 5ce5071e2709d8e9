"""The grant engine end to end against localstripe: a purchase grants, a cancellation at
period end revokes at the period end (not before), revoke-now revokes now, a refund with
the revoke flag revokes a one-time order's grant; re-running the jobs changes nothing."""

from datetime import datetime, timedelta

import pytest
import time_machine

from benefits import services as benefit_services
from benefits.models import BenefitGrant
from benefits.tasks import sweep_grants
from billing.checkout import services as checkout_services
from billing.orders.models import Order
from billing.refunds import services as refund_services
from billing.subscriptions import dunning, renewals
from billing.subscriptions import services as subscription_services
from billing.subscriptions.models import Subscription
from core.events.models import Event
from core.events.services import events_sweep

pytestmark = [pytest.mark.localstripe, pytest.mark.django_db(transaction=True)]

GOOD = "4242424242424242"


def card(stripe_client) -> str:
    return stripe_client.PaymentMethod.create(
        type="card", card={"number": GOOD, "exp_month": 12, "exp_year": 2035, "cvc": "123"}
    ).id


def grants_state() -> list[tuple]:
    return sorted(
        BenefitGrant.objects.values_list("benefit__description", "status", "wanted", "next_attempt_at")
    )


def run_jobs(when: datetime) -> None:
    """Every job that moves grants, twice: the second pass must change nothing."""
    with time_machine.travel(when, tick=False):
        for _ in range(2):
            renewals.renewals_run()
            dunning.dunning_run()
            dunning.benefits_revoke_due()
            events_sweep()
            sweep_grants()
        before = (grants_state(), Event.objects.count())
        renewals.renewals_run()
        dunning.dunning_run()
        dunning.benefits_revoke_due()
        events_sweep()
        sweep_grants()
        assert (grants_state(), Event.objects.count()) == before


def buy(org, product, pm, when):
    with time_machine.travel(when, tick=False):
        checkout = checkout_services.checkout_create(
            organization=org, product_id=product.pk, customer_email="buyer@example.com"
        )
        assert (
            checkout_services.checkout_confirm(checkout=checkout, payment_method_id=pm).status == "succeeded"
        )
    return checkout


@pytest.fixture
def flag(org):
    return benefit_services.benefit_create(
        organization=org, type="feature_flag", description="Pro reports", properties={"key": "pro_reports"}
    )


def test_subscription_grants_then_cancel_at_period_end_revokes_at_the_end(
    org, make_product, stripe_client, flag
):
    product = make_product("Monthly", recurring="month")
    benefit_services.product_benefits_set(product=product, benefits=[flag])
    start = datetime.fromisoformat("2027-03-01T10:00:00+00:00")
    buy(org, product, card(stripe_client), start)
    (grant,) = BenefitGrant.objects.all()
    assert (grant.status, grant.next_attempt_at) == ("granted", None)
    assert Event.objects.filter(type="benefit_grant.created", object_id=str(grant.pk)).count() == 1
    subscription = Subscription.objects.get()
    with time_machine.travel(start + timedelta(days=3), tick=False):
        subscription_services.subscription_cancel(subscription=subscription, reason="unused")
    end = subscription.current_period_end
    run_jobs(end - timedelta(minutes=5))
    grant.refresh_from_db()
    assert grant.status == "granted"  # not before the period's end
    run_jobs(end + timedelta(minutes=1))
    grant.refresh_from_db()
    assert (grant.status, grant.revoke_reason) == ("revoked", "subscription ended")
    assert Event.objects.filter(type="benefit_grant.revoked").count() == 1


def test_revoke_now_revokes_now(org, make_product, stripe_client, flag):
    product = make_product("Monthly", recurring="month")
    benefit_services.product_benefits_set(product=product, benefits=[flag])
    buy(org, product, card(stripe_client), datetime.fromisoformat("2027-03-01T10:00:00+00:00"))
    subscription_services.subscription_revoke(subscription=Subscription.objects.get(), reason="fraud")
    assert BenefitGrant.objects.get().status == "revoked"


def test_one_time_purchase_refund_with_revoke_flag(org, make_product, stripe_client, flag):
    product = make_product("Lifetime")
    benefit_services.product_benefits_set(product=product, benefits=[flag])
    buy(org, product, card(stripe_client), datetime.fromisoformat("2027-03-01T10:00:00+00:00"))
    grant = BenefitGrant.objects.get()
    assert (grant.status, grant.order_id) == ("granted", Order.objects.get().pk)
    refund_services.refund_create(order=Order.objects.get(), amount=500, reason="requested_by_customer")
    grant.refresh_from_db()
    assert grant.status == "granted"  # a refund without the flag keeps access
    refund_services.refund_create(
        order=Order.objects.get(), amount=500, reason="requested_by_customer", revoke_benefits=True
    )
    grant.refresh_from_db()
    assert (grant.status, grant.revoke_reason) == ("revoked", "refunded with benefits revoked")
    run_jobs(datetime.fromisoformat("2027-03-02T10:00:00+00:00"))
