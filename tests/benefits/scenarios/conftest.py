"""Whole-flow benefit scenarios against localstripe, the clock moved with time-machine.

``run_jobs`` is the convergence check: every job that moves subscriptions, orders, events
and grants runs at a moment, and a second pass must change nothing (no order, payment,
event or grant state new)."""

from datetime import datetime

import pytest
import time_machine

from accounts.models import Organization
from benefits import services as benefit_services
from benefits.models import BenefitGrant
from benefits.tasks import sweep_grants
from billing.checkout import services as checkout_services
from billing.orders.models import Order
from billing.payments.models import Payment
from billing.subscriptions import dunning, renewals
from billing.subscriptions.models import Subscription
from core.events.models import Event, EventHandling
from core.events.services import events_sweep

GOOD, DECLINES = "4242424242424242", "4000000000000341"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def card(stripe_client, number: str = GOOD) -> str:
    return stripe_client.PaymentMethod.create(
        type="card", card={"number": number, "exp_month": 12, "exp_year": 2035, "cvc": "123"}
    ).id


def set_default_card(stripe_client, subscription: Subscription, number: str) -> str:
    """The customer's default card from now on (a declining one fails the next renewals)."""
    customer = subscription.customer
    pm = card(stripe_client, number)
    stripe_client.PaymentMethod.attach(pm, customer=customer.stripe_customer_id)
    customer.default_payment_method_id = pm
    customer.save()
    return pm


def state() -> tuple:
    grants = sorted(
        BenefitGrant.objects.values_list(
            "pk", "status", "wanted", "cycle_requested", "update_requested", "next_attempt_at", "properties"
        ),
        key=lambda row: str(row[0]),
    )
    return (
        grants,
        Event.objects.count(),
        EventHandling.objects.exclude(status="done").count(),
        Order.objects.count(),
        Payment.objects.count(),
        list(Subscription.objects.order_by("pk").values_list("status", "benefits_revoke_at")),
    )


def jobs() -> None:
    renewals.renewals_run()
    dunning.dunning_run()
    dunning.benefits_revoke_due()
    events_sweep()
    sweep_grants()


def run_jobs(when: datetime) -> None:
    """Every job at ``when``, twice; then once more, which must change nothing."""
    with time_machine.travel(when, tick=False):
        jobs()
        jobs()
        before = state()
        jobs()
        assert state() == before, "re-running the jobs changed something"


def buy(org, product, pm: str, when: datetime, email: str = "buyer@example.com"):
    with time_machine.travel(when, tick=False):
        checkout = checkout_services.checkout_create(
            organization=org, product_id=product.pk, customer_email=email
        )
        assert (
            checkout_services.checkout_confirm(checkout=checkout, payment_method_id=pm).status == "succeeded"
        )
    return checkout


def events_of(type_: str, grant=None) -> int:
    events = Event.objects.filter(type=type_)
    if grant is not None:
        events = events.filter(object_id=str(grant.pk))
    return events.count()


def org_set(organization, **fields) -> None:
    Organization.objects.filter(pk=organization.pk).update(**fields)
    organization.refresh_from_db()


@pytest.fixture
def flag(org):
    return benefit_services.benefit_create(
        organization=org, type="feature_flag", description="Pro reports", properties={"key": "pro_reports"}
    )


@pytest.fixture
def monthly(make_product, flag):
    product = make_product("Monthly", recurring="month")
    benefit_services.product_benefits_set(product=product, benefits=[flag])
    return product


@pytest.fixture
def lifetime(make_product, flag):
    product = make_product("Lifetime")
    benefit_services.product_benefits_set(product=product, benefits=[flag])
    return product
