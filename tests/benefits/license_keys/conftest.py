"""License keys granted through the real grant engine: a free monthly plan unlocks the
benefit, a checkout makes the subscription, the engine grants it (``grants_reconcile`` and
``grant_process`` called as its consumer and task do)."""

import pytest
from django.db import transaction
from rest_framework.test import APIClient

from benefits import grants
from benefits import services as benefit_services
from benefits.license_keys.models import LicenseKey
from benefits.models import BenefitGrant
from billing.checkout import services as checkout_services
from billing.subscriptions.models import Subscription


@pytest.fixture(autouse=True)
def _roomy_rate(settings):
    # Tests send many requests a second; the rate limit's own tests set it back to 3/s.
    settings.RECUR_LICENSE_KEY_RATE = "1000/s"


@pytest.fixture
def public():
    return APIClient()


@pytest.fixture
def make_benefit(org):
    def make(organization=None, **properties):
        return benefit_services.benefit_create(
            organization=organization or org,
            type="license_keys",
            description="Pro license",
            properties=properties,
        )

    return make


@pytest.fixture
def make_key(org, make_product):
    """A customer's key of ``benefit``: bought on a free monthly plan, granted by the engine."""
    counter = {"n": 0}

    def make(benefit, *, email=None, organization=None) -> LicenseKey:
        organization = organization or benefit.organization
        counter["n"] += 1
        email = email or f"buyer{counter['n']}@example.com"
        product = make_product(
            f"Plan {counter['n']}",
            recurring="month",
            prices=[{"currency": "usd", "type": "free"}],
            organization=organization,
        )
        benefit_services.product_benefits_set(product=product, benefits=[benefit])
        checkout = checkout_services.checkout_create(
            organization=organization, product_id=product.pk, customer_email=email
        )
        checkout_services.checkout_confirm(checkout=checkout)
        subscription = Subscription.objects.get(product=product)
        grant_once(subscription)
        return LicenseKey.objects.get(grant__subscription=subscription)

    return make


def grant_once(subscription) -> None:
    with transaction.atomic():  # as the consumer runs it (a no-op when its event already did)
        grants.grants_reconcile(subscription=subscription, reason="test")
    for grant in BenefitGrant.objects.filter(subscription=subscription):
        grants.grant_process(grant_id=grant.pk)


def process_all() -> None:
    for pk in grants.grants_due():
        grants.grant_process(grant_id=pk)
