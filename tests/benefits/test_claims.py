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


class ChangedMidCall(BenefitStrategy):
    """Calls out; while its grant call is on the wire, the benefit's settings change."""

    type = "test_changed_mid_call"
    label = "Changed mid call"
    calls_out = True

    def __init__(self):
        self.updates = 0

    def grant(self, *, grant, benefit) -> dict:
        if not self.updates:
            grants.grants_request_update(benefit_id=benefit.pk)  # the grant is not granted yet: none
            BenefitGrant.objects.filter(pk=grant.pk).update(update_requested=True)
        return {"repository": benefit.properties.get("repository", "old")}

    def update(self, *, grant, benefit) -> dict:
        self.updates += 1
        return {"repository": "new"}


@pytest.fixture
def changed_mid_call():
    strategy = ChangedMidCall()
    REGISTRY.strategies[strategy.type] = strategy
    yield strategy
    del REGISTRY.strategies[strategy.type]


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


def test_an_update_asked_for_during_a_call_is_applied_after_it(org, customer, make_product, changed_mid_call):
    """The call read the settings before they changed: recording its outcome must not clear
    the update asked for meanwhile, so the grant applies the new settings next."""
    benefit = benefit_services.benefit_create(
        organization=org, type=changed_mid_call.type, description="Repo"
    )
    order = _order(org, customer, make_product("Lifetime"))
    grant = BenefitGrant.objects.create(organization=org, benefit=benefit, customer=customer, order=order)
    assert grants.grant_process(grant_id=grant.pk) == "update"  # granted, then the late update
    grant.refresh_from_db()
    assert (grant.status, grant.properties, grant.update_requested) == (
        "granted",
        {"repository": "new"},
        False,
    )
    assert changed_mid_call.updates == 1 and grant.next_attempt_at is None


def _order(org, customer, product):
    return order_create(
        organization=org, customer=customer, billing_reason="purchase", currency="usd",
        lines=[Line(label="Thing", amount=1000)], product=product,
    )  # fmt: skip
