"""A customer buys, end to end against localstripe; success happens exactly once."""

import threading
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from rest_framework.test import APIClient

from billing.catalog import services as catalog
from billing.catalog.models import DiscountRedemption
from billing.checkout import services
from billing.checkout.models import Checkout
from billing.orders.models import Order
from billing.payments.models import ExternalEvent, Payment
from billing.subscriptions.models import Subscription
from core import clock
from tests.payments import stripe_events

pytestmark = pytest.mark.localstripe

SUCCEEDS, DECLINES_ON_CHARGE, DECLINES_ON_ATTACH = "4242424242424242", "4000000000000341", "4000000000000002"


def card(stripe_client, number: str) -> str:
    return stripe_client.PaymentMethod.create(
        type="card", card={"number": number, "exp_month": 12, "exp_year": 2030, "cvc": "123"}
    ).id


def open_checkout(org, product, **kwargs):
    kwargs.setdefault("customer_email", "buyer@example.com")
    return services.checkout_create(organization=org, product_id=product.pk, **kwargs)


def confirm(checkout, pm: str = "", **changes):
    return APIClient().post(
        f"/v1/checkouts/client/{checkout.client_secret}/confirm",
        {"payment_method_id": pm, **changes},
        format="json",
    )


@pytest.mark.django_db(transaction=True)
def test_one_time_purchase_pays_and_numbers_the_invoice(org, ebook, stripe_client, api):
    checkout = open_checkout(org, ebook)
    response = confirm(checkout, card(stripe_client, SUCCEEDS))
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "succeeded"

    order = Order.objects.get()
    assert (order.status, order.billing_reason, order.total) == ("paid", "purchase", 2000)
    assert order.invoice_number == f"{org.invoice_prefix}-00001"
    assert order.customer.email == "buyer@example.com"
    assert order.items.get().amount == 2000
    assert order.platform_fee == 2000 * 400 // 10000 + 40
    payment = Payment.objects.get()
    assert (payment.status, payment.reference, payment.amount) == ("succeeded", checkout.reference, 2000)
    assert response.json()["order_id"] == str(order.pk)

    pdf = api.get(f"/v1/orders/{order.pk}/invoice")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")


@pytest.mark.django_db(transaction=True)
def test_declined_card_leaves_the_checkout_open_for_another_try(org, ebook, stripe_client):
    checkout = open_checkout(org, ebook)
    declined = confirm(checkout, card(stripe_client, DECLINES_ON_CHARGE)).json()
    assert (declined["status"], declined["payment_error"]) == ("open", "Your card was declined.")
    refused_on_attach = confirm(checkout, card(stripe_client, DECLINES_ON_ATTACH)).json()
    assert refused_on_attach["status"] == "open" and "declined" in refused_on_attach["payment_error"]
    assert not Order.objects.exists()

    paid = confirm(checkout, card(stripe_client, SUCCEEDS)).json()
    assert paid["status"] == "succeeded"
    assert list(Payment.objects.order_by("attempt").values_list("attempt", "status")) == [
        (1, "failed"),
        (2, "succeeded"),
    ]
    assert Order.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_subscription_with_a_trial_saves_the_card_and_charges_nothing(org, monthly, stripe_client):
    checkout = open_checkout(org, monthly, trial_days=14)
    pm = card(stripe_client, SUCCEEDS)
    assert confirm(checkout, pm).json()["status"] == "succeeded"
    subscription = Subscription.objects.get()
    assert subscription.status == "trialing"
    assert subscription.trial_end - subscription.trial_start == timedelta(days=14)
    assert subscription.current_period_end == subscription.trial_end
    order = Order.objects.get()
    assert (order.total, order.billing_reason, order.subscription) == (0, "subscription_create", subscription)
    assert not Payment.objects.exists()
    assert subscription.customer.default_payment_method_id == pm


@pytest.mark.django_db(transaction=True)
def test_subscription_purchase_is_active_from_its_anchor(org, stripe_client, make_product):
    with time_machine.travel("2027-01-31 10:00:00+00:00", tick=False):
        product = make_product("Monthly", recurring="month")
        checkout = open_checkout(org, product)
        assert confirm(checkout, card(stripe_client, SUCCEEDS)).json()["status"] == "succeeded"
    subscription = Subscription.objects.get()
    assert subscription.status == "active"
    assert subscription.current_period_end.isoformat() == "2027-02-28T10:00:00+00:00"
    assert Order.objects.get().period_end == subscription.current_period_end


@pytest.mark.django_db
def test_free_and_fully_discounted_checkouts_succeed_without_payment(org, make_product):
    free = make_product("Free tier", prices=[{"currency": "usd", "type": "free"}])
    assert services.checkout_confirm(checkout=open_checkout(org, free)).status == "succeeded"
    paid = make_product("Paid")
    catalog.discount_create(organization=org, name="All", code="ALL", type="percentage", basis_points=10000)
    assert (
        services.checkout_confirm(checkout=open_checkout(org, paid, discount_code="ALL")).status
        == "succeeded"
    )
    assert not Payment.objects.exists()
    assert list(Order.objects.order_by("invoice_number").values_list("invoice_number", "total")) == [
        (f"{org.invoice_prefix}-00001", 0),
        (f"{org.invoice_prefix}-00002", 0),
    ]
    assert DiscountRedemption.objects.get().status == "redeemed"


@pytest.mark.django_db(transaction=True)
def test_webhook_after_the_synchronous_result_creates_nothing_more(
    org, ebook, stripe_client, client, webhook_endpoint
):
    checkout = open_checkout(org, ebook)
    confirm(checkout, card(stripe_client, SUCCEEDS))
    payment = Payment.objects.get()
    event = stripe_events.event("payment_intent.succeeded", stripe_events.payment_intent(payment))
    assert stripe_events.post(client, webhook_endpoint, event).status_code == 200
    assert ExternalEvent.objects.get().status == "processed"
    assert Order.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_webhook_first_then_the_synchronous_path_converge(org, ebook, client, webhook_endpoint):
    """The payment succeeds by webhook while our confirmation is still under way."""
    checkout = open_checkout(org, ebook)
    checkout = services._confirm_begin(checkout=checkout, payment_method_id="pm_x", changes={})
    from billing.payments import services as payments

    payment = payments.payment_create(
        organization=org,
        customer=checkout.customer,
        reference=checkout.reference,
        amount=2000,
        currency="usd",
        trigger="purchase",
    )
    event = stripe_events.event("payment_intent.succeeded", stripe_events.payment_intent(payment))
    stripe_events.post(client, webhook_endpoint, event)
    checkout.refresh_from_db()
    assert checkout.status == "succeeded"
    # the synchronous confirmation now finds the payment settled and does not call Stripe again
    assert payments.payment_confirm(payment=payment).status == "succeeded"
    assert Order.objects.count() == 1 and Payment.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_confirmations_of_one_checkout_charge_once(org, ebook, stripe_client):
    checkout = open_checkout(org, ebook)
    methods = [card(stripe_client, SUCCEEDS), card(stripe_client, SUCCEEDS)]
    barrier, results = threading.Barrier(2), []

    def go(pm):
        try:
            barrier.wait()
            results.append(confirm(checkout, pm).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=go, args=(pm,)) for pm in methods]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sorted(results) == [200, 409]
    assert Payment.objects.count() == 1
    assert Order.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_last_redemption_is_taken_once_when_two_checkouts_race(org, make_product):
    free_after_discount = make_product("Course")
    catalog.discount_create(
        organization=org, name="One", code="ONCE", type="percentage", basis_points=10000, max_redemptions=1
    )
    checkouts = [
        open_checkout(org, free_after_discount, discount_code="ONCE", customer_email=f"c{i}@example.com")
        for i in range(2)
    ]
    barrier, results = threading.Barrier(2), []

    def go(checkout):
        try:
            barrier.wait()
            results.append(confirm(checkout).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=go, args=(c,)) for c in checkouts]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sorted(results) == [200, 400]
    assert DiscountRedemption.objects.count() == 1
    assert Order.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_invoice_numbers_stay_gapless_under_parallel_orders(org, make_product):
    free = make_product("Free", prices=[{"currency": "usd", "type": "free"}])
    checkouts = [open_checkout(org, free, customer_email=f"p{i}@example.com") for i in range(8)]
    barrier = threading.Barrier(8)

    def go(checkout):
        try:
            barrier.wait()
            services.checkout_confirm(checkout=checkout)
        finally:
            connection.close()

    threads = [threading.Thread(target=go, args=(c,)) for c in checkouts]
    [t.start() for t in threads]
    [t.join() for t in threads]
    numbers = sorted(Order.objects.values_list("invoice_number", flat=True))
    assert numbers == [f"{org.invoice_prefix}-{n:05d}" for n in range(1, 9)]


@pytest.mark.django_db
def test_expiry_job_expires_once(org, ebook):
    checkout = open_checkout(org, ebook)
    assert services.checkouts_expire() == {"expired": 0, "reopened": 0}
    with time_machine.travel(clock.now() + timedelta(hours=24, minutes=1)):
        assert services.checkouts_expire() == {"expired": 1, "reopened": 0}
        assert services.checkouts_expire() == {"expired": 0, "reopened": 0}
    checkout.refresh_from_db()
    assert checkout.status == Checkout.Status.EXPIRED
