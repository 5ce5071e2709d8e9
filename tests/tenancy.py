"""One of everything an organization can own, for the tenant-isolation walk.

Each issue that adds tenant-owned objects appends a seeder here, so the walk in
tests/api/test_tenant_isolation.py tries its ids against every route.
"""

from collections.abc import Callable

from accounts import services as account_services

Seeder = Callable[..., None]


def seed_customers(organization) -> None:
    account_services.customer_create(
        organization=organization, email="victim@example.com", name="Victim", external_id="victim-ext"
    )
    account_services.customer_create(organization=organization, email="second@example.com")


def seed_payments(organization) -> None:
    from accounts.models import Customer
    from billing.payments import services as payment_services

    customer = Customer.objects.filter(organization=organization).first()
    payment_services.payment_create(
        organization=organization,
        customer=customer,
        reference=f"order:tenancy-{organization.pk}",
        amount=1500,
        currency="usd",
        trigger="purchase",
    )


def seed_catalog(organization) -> None:
    from billing.catalog import services as catalog_services

    one_time = catalog_services.product_create(
        organization=organization,
        name="Tenancy ebook",
        prices=[
            {"currency": "usd", "type": "fixed", "amount": 1900},
            {"currency": "eur", "type": "custom", "minimum_amount": 0, "preset_amount": 500},
        ],
    )
    catalog_services.product_create(
        organization=organization,
        name="Tenancy team plan",
        recurring_interval="month",
        prices=[
            {
                "currency": "usd",
                "type": "seat_based",
                "seat_tier_mode": "graduated",
                "seat_tiers": [{"up_to": 5, "unit_amount": 1000}, {"up_to": None, "unit_amount": 800}],
            }
        ],
    )
    catalog_services.discount_create(
        organization=organization,
        name="Tenancy launch",
        code="TENANCY25",
        type="percentage",
        basis_points=2500,
        max_redemptions=10,
        product_ids=[one_time.pk],
    )


SEEDERS: list[Seeder] = [seed_customers, seed_payments]
SEEDERS.append(seed_catalog)


def seed_everything(organization) -> None:
    for seeder in SEEDERS:
        seeder(organization)


def seed_purchases(organization) -> None:
    """A succeeded checkout with its paid order and subscription, and an open checkout."""
    from billing.catalog import services as catalog_services
    from billing.checkout import services as checkout_services

    plan = catalog_services.product_create(
        organization=organization,
        name="Tenancy free plan",
        recurring_interval="month",
        prices=[{"currency": "usd", "type": "free"}],
    )
    paid = checkout_services.checkout_create(
        organization=organization, product_id=plan.pk, customer_email="victim@example.com"
    )
    checkout_services.checkout_confirm(checkout=paid)
    checkout_services.checkout_create(
        organization=organization, product_id=plan.pk, customer_email="b@example.com"
    )


SEEDERS.append(seed_purchases)
