"""A strategy's retryable failure is tried again with backoff (or when the other side said),
found by the sweeper; a plain ``BenefitError`` stops until an operator retries. Either way
the grant ends granted once, with one ``benefit_grant.created``."""

from datetime import timedelta

import pytest
import time_machine

from benefits import grants
from benefits import services as benefit_services
from benefits.models import BenefitGrant
from benefits.strategies import REGISTRY, BenefitError, BenefitRetryableError, BenefitStrategy
from tests.benefits.scenarios.conftest import at, buy, card, events_of, run_jobs

pytestmark = [pytest.mark.localstripe, pytest.mark.django_db(transaction=True)]

START = at("2027-03-01T10:00:00+00:00")


class Scripted(BenefitStrategy):
    """Fails as told, call after call; then grants (keyed on the grant, like a real one)."""

    type = "test_scripted"
    label = "Scripted"

    def __init__(self):
        self.outcomes: list[Exception] = []
        self.calls = 0

    def grant(self, *, grant, benefit) -> dict:
        self.calls += 1
        if self.outcomes:
            raise self.outcomes.pop(0)
        return {"made_for": str(grant.pk)}


@pytest.fixture
def scripted(org, make_product):
    strategy = Scripted()
    REGISTRY.strategies[strategy.type] = strategy
    benefit = benefit_services.benefit_create(organization=org, type=strategy.type, description="Scripted")
    product = make_product("Lifetime")
    benefit_services.product_benefits_set(product=product, benefits=[benefit])
    yield strategy, product
    del REGISTRY.strategies[strategy.type]


def test_retryable_failures_back_off_and_the_sweeper_finishes(org, scripted, stripe_client):
    strategy, product = scripted
    strategy.outcomes = [BenefitRetryableError("timeout"), BenefitRetryableError("503")]
    buy(org, product, card(stripe_client), START)
    grant = BenefitGrant.objects.get()
    assert (grant.status, grant.attempts, grant.error) == ("pending", 1, "timeout")
    assert grant.next_attempt_at == START + timedelta(seconds=30)  # the first backoff
    run_jobs(START + timedelta(seconds=29))
    assert strategy.calls == 1  # not due yet
    run_jobs(START + timedelta(seconds=31))
    grant.refresh_from_db()
    assert (grant.status, grant.attempts, grant.error) == ("pending", 2, "503")
    assert grant.next_attempt_at == START + timedelta(seconds=31 + 60)  # doubled
    run_jobs(START + timedelta(seconds=92))
    grant.refresh_from_db()
    assert (grant.status, grant.attempts, grant.error, grant.next_attempt_at) == ("granted", 0, "", None)
    assert grant.properties == {"made_for": str(grant.pk)} and strategy.calls == 3
    assert events_of("benefit_grant.created", grant) == 1


def test_retry_after_from_the_other_side_is_kept(org, scripted, stripe_client):
    strategy, product = scripted
    strategy.outcomes = [BenefitRetryableError("rate limited", retry_after=600)]
    buy(org, product, card(stripe_client), START)
    grant = BenefitGrant.objects.get()
    assert grant.next_attempt_at == START + timedelta(seconds=600)
    run_jobs(START + timedelta(seconds=599))
    assert strategy.calls == 1
    run_jobs(START + timedelta(seconds=601))
    grant.refresh_from_db()
    assert grant.status == "granted" and events_of("benefit_grant.created", grant) == 1


def test_retrying_gives_up_after_the_last_attempt(org, scripted, stripe_client):
    strategy, product = scripted
    strategy.outcomes = [BenefitRetryableError(f"down {n}") for n in range(grants.MAX_ATTEMPTS + 1)]
    buy(org, product, card(stripe_client), START)
    grant = BenefitGrant.objects.get()
    while grant.next_attempt_at is not None:
        run_jobs(grant.next_attempt_at + timedelta(seconds=1))
        grant.refresh_from_db()
    assert (grant.status, grant.attempts) == ("pending", grants.MAX_ATTEMPTS)
    assert strategy.calls == grants.MAX_ATTEMPTS and grant.error == f"down {grants.MAX_ATTEMPTS - 1}"
    run_jobs(START + timedelta(days=30))
    assert strategy.calls == grants.MAX_ATTEMPTS  # given up: the sweeper leaves it


def test_a_benefit_error_waits_for_an_operator_retry(org, scripted, stripe_client, operator):
    strategy, product = scripted
    strategy.outcomes = [BenefitError("the repository does not exist")]
    buy(org, product, card(stripe_client), START)
    grant = BenefitGrant.objects.get()
    assert (grant.status, grant.next_attempt_at, grant.error) == (
        "pending",
        None,
        "the repository does not exist",
    )
    run_jobs(START + timedelta(days=2))
    assert strategy.calls == 1  # nothing retries it by itself
    with time_machine.travel(START + timedelta(days=2, hours=1), tick=False):
        benefit_services.benefit_grant_retry(grant=grant, actor=operator)
    grant.refresh_from_db()
    assert (grant.status, grant.error, grant.errored_at) == ("granted", "", None)
    assert strategy.calls == 2 and events_of("benefit_grant.created", grant) == 1
    run_jobs(START + timedelta(days=3))
    assert strategy.calls == 2
