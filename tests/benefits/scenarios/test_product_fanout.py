"""A benefit added to a product reaches its 1,000 existing subscribers in batches; removing
it revokes theirs in batches; a fan-out killed half-way resumes from its cursor through the
sweeper. A benefit's new settings reach every holder; deleting it revokes every grant.
After each step, re-running the jobs changes nothing."""

from datetime import timedelta

import pytest
from dateutil.relativedelta import relativedelta

from accounts.models import Customer
from benefits import grants, tasks
from benefits import services as benefit_services
from benefits.models import BenefitGrant, ProductBenefit
from billing.subscriptions.models import Subscription
from core import clock
from core.events.models import Event
from tests.benefits.scenarios.conftest import events_of, run_jobs

pytestmark = pytest.mark.django_db(transaction=True)

HOLDERS = 1000
BATCH = 150  # holders per fan-out transaction here (500 in production): 7 batches


@pytest.fixture
def subscribers(make_subscribers):
    return make_subscribers(HOLDERS)


@pytest.fixture
def make_subscribers(org, make_product):
    """``n`` active monthly subscriptions of one product (rows written directly, as the
    renewal benchmark seeds them), plus a canceled one, which holds nothing."""
    return lambda n: _subscribers(org, make_product, n)


def _subscribers(org, make_product, n):
    product = make_product("Team", recurring="month")
    price = product.prices.get()
    now = clock.now()
    customers = Customer.objects.bulk_create(
        Customer(organization=org, email=f"holder{i}@example.com") for i in range(n + 1)
    )
    Subscription.objects.bulk_create(
        Subscription(
            organization=org, customer=c, product=product, price=price,
            status="active" if i < n else "canceled", currency="usd", amount=2000,
            billing_anchor=now, current_period_start=now, current_period_end=now + relativedelta(months=1),
        )
        for i, c in enumerate(customers)
    )  # fmt: skip
    return product


@pytest.fixture
def counted_batches(monkeypatch):
    """Fan-out with ``BATCH`` holders a transaction; returns the batches run, as
    ("grant" | "revoke", holders in it)."""
    batches = []

    def counting(kind, real):
        def run(link, batch):
            wanted = BenefitGrant.objects.filter(benefit_id=link.benefit_id, wanted="granted")
            before = wanted.count()
            more = real(link, batch)
            batches.append((kind, abs(wanted.count() - before)))
            return more

        return run

    monkeypatch.setattr(grants, "_sync_batch", counting("grant", grants._sync_batch))
    monkeypatch.setattr(grants, "_unsync_batch", counting("revoke", grants._unsync_batch))
    monkeypatch.setattr(grants.product_benefit_sync, "__kwdefaults__", {"batch": BATCH})
    return batches


def live(benefit) -> int:
    return BenefitGrant.objects.filter(benefit=benefit, status="granted").count()


def test_a_benefit_added_reaches_every_subscriber_in_batches_and_leaves_in_batches(
    org, subscribers, flag, counted_batches
):
    benefit_services.product_benefits_set(product=subscribers, benefits=[flag])
    # Six full batches and the rest of the subscriptions, then the (empty) one-time orders.
    assert counted_batches == [("grant", BATCH)] * 6 + [("grant", HOLDERS - 6 * BATCH), ("grant", 0)]
    assert live(flag) == HOLDERS and BenefitGrant.objects.count() == HOLDERS
    assert events_of("benefit_grant.created") == HOLDERS
    link = ProductBenefit.objects.get()
    assert link.synced_at is not None and link.sync_cursor == ""
    run_jobs(clock.now() + timedelta(minutes=2))
    assert live(flag) == HOLDERS and events_of("benefit_grant.created") == HOLDERS

    counted_batches.clear()
    benefit_services.product_benefits_set(product=subscribers, benefits=[])
    assert counted_batches == [("revoke", BATCH)] * 6 + [("revoke", HOLDERS - 6 * BATCH)]
    assert BenefitGrant.objects.filter(status="revoked").count() == HOLDERS
    assert not ProductBenefit.objects.exists()
    assert events_of("benefit_grant.revoked") == HOLDERS
    reasons = set(BenefitGrant.objects.values_list("revoke_reason", flat=True))
    assert reasons == {"benefit removed from the product"}
    run_jobs(clock.now() + timedelta(minutes=4))
    assert events_of("benefit_grant.revoked") == HOLDERS


def test_a_killed_fan_out_resumes_from_its_cursor(org, subscribers, flag, counted_batches, monkeypatch):
    with monkeypatch.context() as lost:
        lost.setattr(tasks, "sync_product_benefit", _Lost())  # the fan-out's message never runs
        benefit_services.product_benefits_set(product=subscribers, benefits=[flag])
        link = ProductBenefit.objects.get()
        assert grants.product_benefit_sync(product_benefit_id=link.pk) is True  # one batch, then killed
    link.refresh_from_db()
    assert link.synced_at is None and link.sync_cursor.startswith("s:")
    assert BenefitGrant.objects.count() == BATCH and live(flag) == BATCH
    run_jobs(clock.now() + timedelta(minutes=2))  # the sweeper finds the unsynced link
    link.refresh_from_db()
    assert link.synced_at is not None
    assert live(flag) == HOLDERS and events_of("benefit_grant.created") == HOLDERS
    assert counted_batches[0] == ("grant", BATCH) and len(counted_batches) == 8  # resumed, not restarted
    holders = BenefitGrant.objects.values_list("subscription_id", flat=True)
    assert len(set(holders)) == len(holders) == HOLDERS  # nobody twice, nobody missed


class _Lost:
    def delay(self, *args):
        return None


def test_new_settings_reach_every_holder_and_delete_revokes_all(org, make_subscribers, flag, counted_batches):
    holders = 250  # three of the sweeper's batches of 100
    subscribers = make_subscribers(holders)
    benefit_services.product_benefits_set(product=subscribers, benefits=[flag])
    benefit_services.benefit_update(benefit=flag, properties={"key": "pro_reports", "metadata": {"seats": 5}})
    assert not BenefitGrant.objects.filter(update_requested=True).exists()
    assert events_of("benefit_grant.updated") == holders
    assert BenefitGrant.objects.filter(next_attempt_at__isnull=False).count() == 0
    run_jobs(clock.now() + timedelta(minutes=2))
    assert events_of("benefit_grant.updated") == holders

    benefit_services.benefit_delete(benefit=flag)
    assert BenefitGrant.objects.filter(status="revoked", revoke_reason="benefit deleted").count() == holders
    assert events_of("benefit_grant.revoked") == holders
    run_jobs(clock.now() + timedelta(minutes=4))
    assert events_of("benefit_grant.revoked") == holders
    assert Event.objects.filter(type="benefit.deleted").count() == 1
