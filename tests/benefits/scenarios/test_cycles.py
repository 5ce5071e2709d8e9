"""Each renewal cycles the subscription's grants once (``benefit_grant.cycled``): meter
credits are credited per period, the unused part rolling over or lapsing per the benefit."""

from datetime import timedelta

import pytest

from benefits import services as benefit_services
from benefits.models import BenefitGrant
from billing.subscriptions.models import Subscription
from tests.benefits.scenarios.conftest import at, buy, card, events_of, run_jobs

pytestmark = [pytest.mark.localstripe, pytest.mark.django_db(transaction=True)]

START = at("2027-01-31T08:00:00+00:00")


@pytest.mark.parametrize("rollover", [True, False])
def test_renewals_cycle_meter_credits(org, make_product, stripe_client, flag, rollover):
    credits = benefit_services.benefit_create(
        organization=org,
        type="meter_credit",
        description="API calls",
        properties={"meter": "api_calls", "units": 1000, "rollover": rollover},
    )
    product = make_product("Monthly", recurring="month")
    benefit_services.product_benefits_set(product=product, benefits=[credits, flag])
    buy(org, product, card(stripe_client), START)
    grant = BenefitGrant.objects.get(benefit=credits)
    assert grant.properties == {"meter": "api_calls", "credited": 1000, "cycles": 0}
    subscription = Subscription.objects.get()
    for n in range(1, 4):
        run_jobs(subscription.current_period_end + timedelta(minutes=1))
        subscription.refresh_from_db()
        grant.refresh_from_db()
        assert grant.properties["cycles"] == n
        assert grant.properties["credited"] == (1000 * (n + 1) if rollover else 1000)
        assert (grant.status, grant.cycle_requested, grant.next_attempt_at) == ("granted", False, None)
        assert events_of("benefit_grant.cycled", grant) == n
    flag_grant = BenefitGrant.objects.get(benefit=flag)
    assert events_of("benefit_grant.cycled", flag_grant) == 3  # every grant of it cycles
    assert events_of("benefit_grant.created") == 2
