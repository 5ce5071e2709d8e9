"""Shared set-up for subscription tests: an organization on the manual processor, a set of
plans, and subscribing through the real checkout services."""

from datetime import datetime, timedelta

import pytest
import time_machine

from accounts.models import Organization
from billing.checkout import services as checkout_services
from billing.subscriptions.models import Subscription

START = datetime.fromisoformat("2027-04-01T00:00:00+00:00")  # April: 30 days (2,592,000 s)
MIDDLE = START + timedelta(days=10)  # 20 of 30 days left: r = 2/3


@pytest.fixture
def manual_org(org):
    Organization.objects.filter(pk=org.pk).update(payment_processor="manual")
    org.refresh_from_db()
    return org


@pytest.fixture
def plans(manual_org, make_product):
    def product(name, amount=None, currency="usd", recurring="month", **price):
        price = price or {"type": "fixed", "amount": amount}
        return make_product(name, recurring=recurring, prices=[{"currency": currency, **price}])

    return {
        "basic": product("Basic", 3000),
        "pro": product("Pro", 9000),
        "team": product(
            "Team", type="seat_based", seat_tier_mode="volume", minimum_seats=1, maximum_seats=50,
            seat_tiers=[{"up_to": None, "unit_amount": 1000}],
        ),
        "yearly": product("Yearly", 20000, recurring="year"),
        "euro": product("Euro", 2000, currency="eur"),
    }  # fmt: skip


def price_of(product):
    return product.prices.get(is_archived=False)


def subscribe(org, product, **options) -> Subscription:
    with time_machine.travel(START, tick=False):
        checkout = checkout_services.checkout_create(
            organization=org, product_id=product.pk, customer_email="sub@example.com", **options
        )
        checkout_services.checkout_confirm(checkout=checkout, payment_method_id="pm_manual")
    return Subscription.objects.get(checkout=checkout)
