"""A strategy that calls out holds the grant by a claim, not a lock: a call that outlives its
claim (a slow network) while another worker takes the grant over and records it leaves that
outcome alone, so the grant is recorded once (one ``benefit_grant.created``)."""

from datetime import timedelta

import pytest
import time_machine

from benefits import grants
from benefits import services as benefit_services
from benefits.models import BenefitGrant
from benefits.strategies import REGISTRY, BenefitStrategy
from billing.orders.services import Line, order_create
from core import clock
from core.events.models import Event

pytestmark = pytest.mark.django_db


class SlowRemote(BenefitStrategy):
    """Calls out; its first call is so slow that another worker runs the grant meanwhile."""

    type = "test_slow_remote"
    label = "Slow remote"
    calls_out = True

    def __init__(self):
        self.calls = 0

    def grant(self, *, grant, benefit) -> dict:
        self.calls += 1
        if self.calls == 1:
            with time_machine.travel(clock.now() + grants.CLAIM + timedelta(seconds=1), tick=False):
                assert grants.grant_process(grant_id=grant.pk) == "grant"  # the other worker
        return {"invitation": f"for-{grant.pk}"}


@pytest.fixture
def slow_remote():
    strategy = SlowRemote()
    REGISTRY.strategies[strategy.type] = strategy
    yield strategy
    del REGISTRY.strategies[strategy.type]


def test_a_call_that_outlived_its_claim_is_not_recorded_twice(org, customer, make_product, slow_remote):
    benefit = benefit_services.benefit_create(organization=org, type=slow_remote.type, description="Repo")
    order = _order(org, customer, make_product("Lifetime"))
    grant = BenefitGrant.objects.create(organization=org, benefit=benefit, customer=customer, order=order)
    assert grants.grant_process(grant_id=grant.pk) == "busy"  # the slow call's outcome is dropped
    grant.refresh_from_db()
    assert (grant.status, grant.claimed_until, grant.next_attempt_at) == ("granted", None, None)
    assert slow_remote.calls == 2
    assert Event.objects.filter(type="benefit_grant.created", object_id=str(grant.pk)).count() == 1


def _order(org, customer, product):
    return order_create(
        organization=org, customer=customer, billing_reason="purchase", currency="usd",
        lines=[Line(label="Thing", amount=1000)], product=product,
    )  # fmt: skip
