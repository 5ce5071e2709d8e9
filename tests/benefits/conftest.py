"""Benefits held by real purchases: a free plan (no processor call) sold through checkout, its
grants made by the engine as the events arrive (after commit, run here)."""

import pytest

from benefits import services as benefit_services
from benefits.models import BenefitGrant
from billing.checkout import services as checkout_services


@pytest.fixture
def make_benefit(org):
    def make(description="Pro reports", *, type="feature_flag", properties=None, organization=None, **kwargs):
        if properties is None:
            properties = {"key": "pro_reports"} if type == "feature_flag" else {}
        return benefit_services.benefit_create(
            organization=organization or org,
            type=type,
            description=description,
            properties=properties,
            **kwargs,
        )

    return make


@pytest.fixture
def buy_free(org, django_capture_on_commit_callbacks):
    """``buy_free(product, email)``: a checkout of a free price, confirmed; the grant engine
    runs on the events it records. Returns the checkout."""

    def buy(product, email="buyer@example.com", organization=None):
        with django_capture_on_commit_callbacks(execute=True):
            checkout = checkout_services.checkout_create(
                organization=organization or org, product_id=product.pk, customer_email=email
            )
            checkout_services.checkout_confirm(checkout=checkout)
        return checkout

    return buy


@pytest.fixture
def free_plan(make_product):
    return make_product("Free plan", recurring="month", prices=[{"currency": "usd", "type": "free"}])


@pytest.fixture
def held(org, make_benefit, free_plan, buy_free, django_capture_on_commit_callbacks):
    """A customer holding a feature flag through a free monthly subscription (granted)."""
    flag = make_benefit()
    with django_capture_on_commit_callbacks(execute=True):
        benefit_services.product_benefits_set(product=free_plan, benefits=[flag])
    buy_free(free_plan)
    return BenefitGrant.objects.get(benefit=flag)
