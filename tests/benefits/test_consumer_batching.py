"""The benefits consumer reads a batch of renewals' events in a constant number of queries:
nothing per event for products without benefits, and only the cycle requests' two statements
for subscriptions whose grants already match."""

import pytest
from dateutil.relativedelta import relativedelta
from django.db import transaction

from accounts.models import Customer
from benefits import services as benefit_services
from benefits.consumers import benefits_on_events
from benefits.models import BenefitGrant
from billing.subscriptions.models import Subscription
from core import clock
from core.events.services import events_record_bulk

pytestmark = pytest.mark.django_db

N = 60


def renewed(org, product) -> list:
    now = clock.now()
    customers = Customer.objects.bulk_create(
        Customer(organization=org, email=f"c{i}@example.com") for i in range(N)
    )
    subscriptions = Subscription.objects.bulk_create(
        Subscription(
            organization=org, customer=c, product=product, price=product.prices.get(), status="active",
            currency="usd", amount=2000, billing_anchor=now, current_period_start=now,
            current_period_end=now + relativedelta(months=1),
        )
        for c in customers
    )  # fmt: skip
    with transaction.atomic():
        return subscriptions, events_record_bulk(
            type="subscription.cycled",
            objects=Subscription.objects.filter(pk__in=[s.pk for s in subscriptions]),
        )


def test_renewals_of_a_product_without_benefits_cost_three_reads(
    org, make_product, django_assert_num_queries
):
    _, events = renewed(org, make_product("Plain", recurring="month"))
    with django_assert_num_queries(3):  # the subscriptions, their products' benefits, their grants
        benefits_on_events(events)


def test_renewals_whose_grants_match_only_ask_for_cycles(org, make_product, django_assert_max_num_queries):
    product = make_product("With a flag", recurring="month")
    flag = benefit_services.benefit_create(
        organization=org, type="feature_flag", description="Flag", properties={"key": "f"}
    )
    subscriptions, events = renewed(org, product)
    benefit_services.product_benefits_set(product=product, benefits=[flag])
    BenefitGrant.objects.bulk_create(
        BenefitGrant(
            organization=org, benefit=flag, customer_id=s.customer_id, subscription=s, status="granted",
            next_attempt_at=None,
        )
        for s in subscriptions
    )  # fmt: skip
    with django_assert_max_num_queries(6):  # + which hold, the cycled grants' ids and their update
        benefits_on_events(events)
    assert BenefitGrant.objects.filter(cycle_requested=True, next_attempt_at__isnull=False).count() == N
