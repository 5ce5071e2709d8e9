"""A real worker killed while recording a grant (the strategy ran, the outcome had not
committed): nothing of that attempt stays, the grant is still due, and the sweeper's next run
on a clean worker grants it exactly once (one ``benefit_grant.created``)."""

import signal

import pytest
import redis
from dateutil.relativedelta import relativedelta
from django.db import transaction

from accounts.models import Customer
from benefits import services as benefit_services
from benefits.models import BenefitGrant
from benefits.tasks import sweep_grants
from billing.subscriptions.models import Subscription
from config.celery import app
from core import clock
from core.events.models import Event
from tests.redis_urls import TEST_BROKER_URL
from tests.workers import Worker, send, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def broker():
    client = redis.Redis.from_url(TEST_BROKER_URL)
    client.flushdb()
    yield
    client.flushdb()


def test_a_worker_killed_mid_grant_is_finished_by_the_sweeper_once(org, make_product, flag, broker, tmp_path):
    product = make_product("Monthly", recurring="month")
    now = clock.now()
    customer = Customer.objects.create(organization=org, email="held@example.com")
    subscription = Subscription.objects.create(
        organization=org, customer=customer, product=product, price=product.prices.get(), status="active",
        currency="usd", amount=2000, billing_anchor=now, current_period_start=now,
        current_period_end=now + relativedelta(months=1),
    )  # fmt: skip
    crashing = Worker(tmp_path / "crashing.log", RECUR_CRASH_AT="benefits.grant_recorded")
    try:
        app.conf.task_always_eager = False  # the fan-out and the grant's processing go to the worker
        with transaction.atomic():
            benefit_services.product_benefits_set(product=product, benefits=[flag])
        app.conf.task_always_eager = True
        assert crashing.wait_for_death(timeout=120) == -signal.SIGKILL, crashing.output()
    finally:
        app.conf.task_always_eager = True
        crashing.stop()

    grant = BenefitGrant.objects.get(subscription=subscription)
    assert (grant.status, grant.attempts, grant.granted_at) == ("pending", 0, None)  # rolled back
    assert grant.next_attempt_at is not None and grant.next_attempt_at <= clock.now()
    assert not Event.objects.filter(type__startswith="benefit_grant.").exists()

    clean = Worker(tmp_path / "clean.log")
    try:
        send("benefits.sweep_grants")  # what beat sends every minute
        wait_until(
            lambda: BenefitGrant.objects.get().status == "granted",
            timeout=120,
            message=lambda: clean.output(),
        )
    finally:
        clean.stop()
    assert sweep_grants() == 0  # nothing left due: a second sweep does nothing
    grant.refresh_from_db()
    assert (grant.status, grant.next_attempt_at, grant.attempts) == ("granted", None, 0)
    assert Event.objects.filter(type="benefit_grant.created", object_id=str(grant.pk)).count() == 1
    assert Event.objects.filter(type__startswith="benefit_grant.").count() == 1
