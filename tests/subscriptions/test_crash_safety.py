"""A renewal batch interrupted mid-way and re-run cycles every subscription exactly once."""

from datetime import datetime, timedelta

import pytest
import time_machine

from billing.orders.models import Order
from billing.subscriptions import renewals
from billing.subscriptions.models import Subscription

pytestmark = pytest.mark.django_db(transaction=True)

NOW = datetime.fromisoformat("2027-09-01T00:00:00+00:00")


@pytest.fixture
def due(org, customer, make_product):
    product = make_product("Monthly", recurring="month")
    price = product.prices.get()
    start = NOW - timedelta(days=30)
    Subscription.objects.bulk_create(
        Subscription(
            organization=org, customer=customer, product=product, price=price, status="active", currency="usd",
            amount=2000, billing_anchor=start, current_period_start=start, current_period_end=NOW - timedelta(minutes=n),
        )
        for n in range(1, 41)
    )  # fmt: skip
    return Subscription.objects.count()


def test_an_exception_mid_batch_rolls_back_and_a_rerun_cycles_each_once(due, monkeypatch):
    real = renewals._cycle_one
    seen = []

    def explode_on_the_25th(subscription, pending, now):
        seen.append(subscription.pk)
        if len(seen) == 25:
            raise RuntimeError("worker blew up")
        return real(subscription, pending, now)

    monkeypatch.setattr(renewals, "_cycle_one", explode_on_the_25th)
    with time_machine.travel(NOW, tick=False), pytest.raises(RuntimeError):
        renewals.renewals_run(chunk=15)
    assert Order.objects.count() == 15  # the first chunk committed; the second rolled back whole
    assert not Subscription.objects.filter(renewal_claimed_at__isnull=False).exists()  # given back

    monkeypatch.setattr(renewals, "_cycle_one", real)
    with time_machine.travel(NOW, tick=False):
        renewals.renewals_run(chunk=15)
        assert renewals.renewals_run().cycled == 0
    assert Order.objects.count() == due
    assert Order.objects.values("subscription").distinct().count() == due


def test_a_killed_worker_leaves_claims_that_expire(due):
    with time_machine.travel(NOW, tick=False):
        claimed = renewals.renewals_claim(now=NOW, limit=10)  # ...and the worker dies here
        assert len(claimed) == 10
        assert renewals.renewals_run().cycled == due - 10  # the others are not blocked
        assert renewals.renewals_run().cycled == 0
    with time_machine.travel(NOW + renewals.CLAIM_TTL + timedelta(seconds=1), tick=False):
        assert renewals.renewals_run().cycled == 10  # the dead worker's claims expired
        assert renewals.renewals_run().cycled == 0
    assert Order.objects.count() == due


def test_the_database_refuses_a_second_order_for_the_same_period(due):
    from django.db import IntegrityError, transaction

    with time_machine.travel(NOW, tick=False):
        renewals.renewals_run()
    order = Order.objects.first()
    with pytest.raises(IntegrityError), transaction.atomic():
        Order.objects.create(
            organization=order.organization, customer=order.customer, billing_reason=order.billing_reason,
            currency="usd", subtotal=1, net=1, total=1, due=1, subscription=order.subscription,
            period_start=order.period_start,
        )  # fmt: skip
