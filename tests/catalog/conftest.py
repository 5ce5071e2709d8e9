from datetime import timedelta

import pytest

from billing.catalog import services
from billing.catalog.models import Price, Product
from core import clock


@pytest.fixture
def make_product(org):
    def make(organization=None, *, name="Pro plan", prices=None, **fields):
        return services.product_create(
            organization=organization or org,
            name=name,
            prices=prices or [{"currency": "usd", "type": "fixed", "amount": 1000}],
            **fields,
        )

    return make


@pytest.fixture
def product(make_product):
    return make_product()


@pytest.fixture
def make_discount(org):
    def make(organization=None, *, name="Launch", type="percentage", **fields):
        if type == "percentage":
            fields.setdefault("basis_points", 2500)
        return services.discount_create(organization=organization or org, name=name, type=type, **fields)

    return make


@pytest.fixture
def make_checkout(org):
    """A bare checkout row (the checkout service is not under test here)."""
    from billing.checkout.models import Checkout

    def make(product: Product, price: Price | None = None, **fields):
        price = price or Price.objects.filter(product=product, is_archived=False).first()
        return Checkout.objects.create(
            organization=product.organization,
            product=product,
            price=price,
            currency=price.currency,
            expires_at=clock.now() + timedelta(hours=24),
            **fields,
        )

    return make


@pytest.fixture
def make_subscription(customer):
    """A bare subscription row, to make a product "sold"."""
    from billing.subscriptions.models import Subscription

    def make(product: Product, price: Price | None = None):
        price = price or Price.objects.filter(product=product, is_archived=False).first()
        now = clock.now()
        return Subscription.objects.create(
            organization=product.organization,
            customer=customer,
            product=product,
            price=price,
            status="active",
            currency=price.currency,
            amount=price.amount or 0,
            billing_anchor=now,
            current_period_start=now,
            current_period_end=now + timedelta(days=30),
        )

    return make


# The backoffice helpers (a staff user in a role, htmx request headers).
from tests.backoffice.conftest import htmx, make_staff  # noqa: E402, F401
