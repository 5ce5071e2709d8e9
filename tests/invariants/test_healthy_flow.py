"""A healthy whole flow against localstripe (purchases, three renewal cycles, a declined
renewal in dunning, a refund) keeps every invariant holding at every step, and re-running
the jobs after each step creates nothing new."""

import io
from datetime import datetime, timedelta

import pytest
import time_machine
from django.core.management import call_command

from billing.checkout import services as checkout_services
from billing.ledger.reconciliation import reconciliation_run
from billing.ledger.reconciliation.invariants import INVARIANTS, invariants_run
from billing.orders.models import Order
from billing.payments.models import Payment
from billing.refunds import services as refund_services
from billing.refunds.models import Refund
from billing.subscriptions import dunning, renewals
from billing.subscriptions.models import Subscription

pytestmark = [pytest.mark.localstripe, pytest.mark.django_db(transaction=True)]

GOOD, DECLINES = "4242424242424242", "4000000000000341"
T0 = datetime.fromisoformat("2027-06-03T09:00:00+00:00")


def card(stripe_client, number: str = GOOD) -> str:
    return stripe_client.PaymentMethod.create(
        type="card", card={"number": number, "exp_month": 12, "exp_year": 2035, "cvc": "123"}
    ).id


def subscribe(org, product, email: str, pm: str) -> Subscription:
    with time_machine.travel(T0, tick=False):
        checkout = checkout_services.checkout_create(
            organization=org, product_id=product.pk, customer_email=email
        )
        assert (
            checkout_services.checkout_confirm(checkout=checkout, payment_method_id=pm).status == "succeeded"
        )
    return Subscription.objects.get(checkout=checkout)


def counts() -> tuple[int, int, int]:
    return Order.objects.count(), Payment.objects.count(), Refund.objects.count()


def step(when: datetime) -> None:
    """Run the jobs at ``when``; again changes nothing; half an hour later every invariant holds."""
    with time_machine.travel(when, tick=False):
        renewals.renewals_run()
        dunning.dunning_run()
        before = counts()
        assert renewals.renewals_run().cycled == 0
        assert dunning.dunning_run() == 0
        assert counts() == before
    assert_all_hold(when + timedelta(minutes=30))


def assert_all_hold(when: datetime) -> None:
    with time_machine.travel(when, tick=False):
        assert reconciliation_run().ok
        run = invariants_run()
        assert run.failing == []
        assert {result["name"] for result in run.results} == set(INVARIANTS)


def test_every_invariant_holds_through_a_healthy_quarter(org, make_product, stripe_client):
    product = make_product(
        "Monthly", recurring="month", prices=[{"currency": "usd", "type": "fixed", "amount": 2500}]
    )
    subscriptions = [subscribe(org, product, f"buyer{n}@example.com", card(stripe_client)) for n in range(3)]
    assert_all_hold(T0 + timedelta(minutes=30))

    ends = []
    for cycle in range(3):
        if cycle == 2:  # the third customer's last renewal declines: dunning schedules a retry
            declining = subscriptions[2].customer
            bad = card(stripe_client, DECLINES)
            stripe_client.PaymentMethod.attach(bad, customer=declining.stripe_customer_id)
            type(declining).objects.filter(pk=declining.pk).update(default_payment_method_id=bad)
        end = Subscription.objects.get(pk=subscriptions[0].pk).current_period_end
        ends.append(end)
        step(end + timedelta(minutes=1))
    (in_dunning,) = Order.objects.filter(status="pending")
    assert (
        in_dunning.subscription_id == subscriptions[2].pk and in_dunning.next_payment_attempt_at is not None
    )
    assert Subscription.objects.get(pk=subscriptions[2].pk).status == "past_due"
    paid_cycles = Order.objects.filter(billing_reason="subscription_cycle", status="paid")
    assert paid_cycles.count() == 8  # three cycles of two customers, two of the third
    assert Payment.objects.filter(status="succeeded", trigger="cycle").count() == 8

    # a partial refund of a renewal, through localstripe
    order = paid_cycles.order_by("created_at").first()
    refund_at = ends[-1] + timedelta(hours=2)
    with time_machine.travel(refund_at, tick=False):
        refund = refund_services.refund_request(order=order, amount=1000, reason="requested_by_customer")
    refund.refresh_from_db()
    assert refund.status == "succeeded" and refund.payment.amount_refunded == 1000
    step(refund_at + timedelta(minutes=1))

    with time_machine.travel(refund_at + timedelta(hours=1), tick=False):
        out = io.StringIO()
        call_command("ledger_reconcile", stdout=out)  # no CommandError: exit status 0
    assert "no discrepancies" in out.getvalue()
    assert f"invariants: all {len(INVARIANTS)} hold" in out.getvalue()
