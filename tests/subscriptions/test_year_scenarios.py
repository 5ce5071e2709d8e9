"""Whole-year scenarios against localstripe, moving the clock. After every step, running the
renewal and dunning jobs again creates nothing new (the convergence check)."""

from datetime import datetime, timedelta

import pytest
import time_machine

from billing.checkout import services as checkout_services
from billing.orders.models import Order
from billing.payments import services as payment_services
from billing.payments.models import Payment
from billing.subscriptions import dunning, renewals
from billing.subscriptions.models import BillingEntry, Subscription
from core.events.models import Event

pytestmark = [pytest.mark.localstripe, pytest.mark.django_db(transaction=True)]

GOOD, DECLINES = "4242424242424242", "4000000000000341"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def card(stripe_client, number: str) -> str:
    return stripe_client.PaymentMethod.create(
        type="card", card={"number": number, "exp_month": 12, "exp_year": 2035, "cvc": "123"}
    ).id


def counts() -> tuple[int, int, int]:
    return Order.objects.count(), Payment.objects.count(), BillingEntry.objects.count()


def run_jobs(when: datetime) -> None:
    """Run the renewal and dunning jobs at ``when``, then again: the second run must change nothing."""
    with time_machine.travel(when, tick=False):
        renewals.renewals_run()
        dunning.dunning_run()
        before = counts()
        assert renewals.renewals_run().cycled == 0
        assert dunning.dunning_run() == 0
        assert counts() == before


def subscribe(org, product, pm: str, when: datetime, **options) -> Subscription:
    with time_machine.travel(when, tick=False):
        checkout = checkout_services.checkout_create(
            organization=org, product_id=product.pk, customer_email="annual@example.com", **options
        )
        assert (
            checkout_services.checkout_confirm(checkout=checkout, payment_method_id=pm).status == "succeeded"
        )
    return Subscription.objects.get()


def test_month_end_anchor_through_twelve_renewals(org, make_product, stripe_client):
    product = make_product(
        "Monthly", recurring="month", prices=[{"currency": "usd", "type": "fixed", "amount": 1500}]
    )
    subscription = subscribe(org, product, card(stripe_client, GOOD), at("2027-01-31T08:00:00+00:00"))
    ends = []
    for _ in range(12):
        run_jobs(subscription.current_period_end + timedelta(minutes=1))
        subscription.refresh_from_db()
        ends.append(subscription.current_period_start.date().isoformat())
    assert ends == [
        "2027-02-28", "2027-03-31", "2027-04-30", "2027-05-31", "2027-06-30", "2027-07-31",
        "2027-08-31", "2027-09-30", "2027-10-31", "2027-11-30", "2027-12-31", "2028-01-31",
    ]  # fmt: skip
    assert subscription.status == "active"
    orders = Order.objects.order_by("created_at")
    assert [o.billing_reason for o in orders] == ["subscription_create"] + ["subscription_cycle"] * 12
    assert {o.status for o in orders} == {"paid"}
    assert sorted(o.invoice_number for o in orders) == [f"{org.invoice_prefix}-{n:05d}" for n in range(1, 14)]
    assert Payment.objects.filter(status="succeeded", trigger="cycle").count() == 12


def test_trial_converts_at_its_end(org, make_product, stripe_client):
    product = make_product("Trial plan", recurring="month")
    subscription = subscribe(
        org, product, card(stripe_client, GOOD), at("2027-03-01T12:00:00+00:00"), trial_days=14
    )
    assert subscription.status == "trialing"
    run_jobs(at("2027-03-15T12:00:01+00:00"))
    subscription.refresh_from_db()
    assert subscription.status == "active"
    assert subscription.current_period_end == at("2027-04-15T12:00:00+00:00")
    order = Order.objects.get(billing_reason="subscription_cycle_after_trial")
    assert (order.status, order.total) == ("paid", 2000)


def _fail_next_renewals(stripe_client, subscription) -> None:
    customer = subscription.customer
    bad = card(stripe_client, DECLINES)
    stripe_client.PaymentMethod.attach(bad, customer=customer.stripe_customer_id)
    customer.default_payment_method_id = bad
    customer.save()


def test_failed_renewal_recovers_on_the_second_retry(org, make_product, stripe_client):
    product = make_product("Monthly", recurring="month")
    subscription = subscribe(org, product, card(stripe_client, GOOD), at("2027-05-10T09:00:00+00:00"))
    _fail_next_renewals(stripe_client, subscription)

    renewal = subscription.current_period_end + timedelta(minutes=1)
    run_jobs(renewal)
    subscription.refresh_from_db()
    order = Order.objects.get(billing_reason="subscription_cycle")
    assert subscription.status == "past_due"
    assert (order.status, order.dunning_attempts) == ("pending", 0)
    assert order.next_payment_attempt_at == renewal + timedelta(days=2)

    run_jobs(renewal + timedelta(days=2, minutes=1))  # first retry: still declined
    order.refresh_from_db()
    assert (order.status, order.dunning_attempts) == ("pending", 1)

    good = card(stripe_client, GOOD)
    stripe_client.PaymentMethod.attach(good, customer=subscription.customer.stripe_customer_id)
    subscription.customer.default_payment_method_id = good
    subscription.customer.save()
    run_jobs(order.next_payment_attempt_at + timedelta(minutes=1))  # second retry: paid
    order.refresh_from_db()
    subscription.refresh_from_db()
    assert (order.status, subscription.status) == ("paid", "active")
    assert list(
        Payment.objects.filter(reference=order.reference).order_by("attempt").values_list("trigger", "status")
    ) == [
        ("cycle", "failed"),
        ("dunning_retry", "failed"),
        ("dunning_retry", "succeeded"),
    ]


def test_exhausted_dunning_cancels_and_schedules_benefit_revocation(org, make_product, stripe_client):
    product = make_product("Monthly", recurring="month")
    subscription = subscribe(org, product, card(stripe_client, GOOD), at("2027-06-01T09:00:00+00:00"))
    _fail_next_renewals(stripe_client, subscription)
    when = subscription.current_period_end + timedelta(minutes=1)
    run_jobs(when)
    order = Order.objects.get(billing_reason="subscription_cycle")
    for _ in range(4):
        order.refresh_from_db()
        run_jobs(order.next_payment_attempt_at + timedelta(minutes=1))
    order.refresh_from_db()
    subscription.refresh_from_db()
    assert (subscription.status, order.status, order.next_payment_attempt_at) == ("canceled", "void", None)
    # The grace period ran from the first failure and is over by now: access goes at once.
    grace_end = subscription.past_due_at + timedelta(days=org.benefit_grace_days)
    assert subscription.benefits_revoke_at == max(subscription.ended_at, grace_end)
    assert Payment.objects.filter(reference=order.reference).count() == 5  # the renewal and four retries
    run_jobs(order.updated_at + timedelta(days=40))  # nothing renews a canceled subscription
    assert Order.objects.filter(subscription=subscription).count() == 2


def test_a_new_default_card_retries_at_once(org, make_product, stripe_client):
    product = make_product("Monthly", recurring="month")
    subscription = subscribe(org, product, card(stripe_client, GOOD), at("2027-07-01T09:00:00+00:00"))
    _fail_next_renewals(stripe_client, subscription)
    when = subscription.current_period_end + timedelta(minutes=1)
    run_jobs(when)
    good = card(stripe_client, GOOD)
    stripe_client.PaymentMethod.attach(good, customer=subscription.customer.stripe_customer_id)
    with time_machine.travel(when + timedelta(hours=3), tick=False):
        payment_services.customer_payment_method_saved(
            processor_customer_id=subscription.customer.stripe_customer_id, payment_method_id=good
        )
    subscription.refresh_from_db()
    assert subscription.status == "active"
    assert Order.objects.get(billing_reason="subscription_cycle").status == "paid"


def test_access_is_revoked_once_after_the_grace_period(org, make_product, stripe_client):
    """``subscription.revoked`` (what benefits revoke on) is recorded once, when the period a
    cancellation left to run is over (no grace: that is for failed payments); the
    ``canceled`` event before it says when that will be."""
    product = make_product("Monthly", recurring="month")
    subscription = subscribe(org, product, card(stripe_client, GOOD), at("2027-08-01T09:00:00+00:00"))
    from billing.subscriptions import services as subscription_services

    subscription_services.subscription_cancel(subscription=subscription, reason="unused")
    end = subscription.current_period_end
    with time_machine.travel(end - timedelta(minutes=1), tick=False):
        assert dunning.benefits_revoke_due() == 0  # still within the paid period
    run_jobs(end + timedelta(minutes=1))  # ends the subscription
    with time_machine.travel(end + timedelta(minutes=2), tick=False):
        assert dunning.benefits_revoke_due() == 1
        assert dunning.benefits_revoke_due() == 0  # once
    (revoked,) = Event.objects.filter(type="subscription.revoked")
    assert revoked.object_id == str(subscription.pk) and revoked.data["status"] == "canceled"
    canceled = Event.objects.filter(type="subscription.canceled", object_id=str(subscription.pk)).first()
    assert canceled.data["cancel_at_period_end"] is True
