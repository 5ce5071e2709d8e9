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


SEEDERS: list[Seeder] = [seed_customers, seed_payments]


def seed_everything(organization) -> None:
    for seeder in SEEDERS:
        seeder(organization)
