"""Checkout over the API: amounts on the server, bad input refused with nothing charged."""

from datetime import timedelta

import pytest
import time_machine

from billing.catalog import services as catalog
from billing.checkout.models import Checkout
from billing.orders.models import Order
from billing.payments.models import Payment
from core import clock

pytestmark = pytest.mark.django_db


def create(api, **body):
    return api.post("/v1/checkouts", body, format="json")


def test_amounts_are_computed_on_the_server(api, make_product):
    product = make_product(prices=[{"currency": "usd", "type": "fixed", "amount": 10000}])
    catalog.discount_create(
        organization=product.organization,
        name="Launch",
        code="LAUNCH20",
        type="percentage",
        basis_points=2000,
    )
    response = create(
        api,
        product_id=str(product.pk),
        discount_code="launch20",
        billing_address={"country": "FR"},
        customer_email="ada@example.com",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["subtotal"], body["discount_amount"], body["net"]) == (10000, 2000, 8000)
    assert (body["tax_rate_bps"], body["tax"], body["total"]) == (2000, 1600, 9600)
    assert body["status"] == "open"
    assert body["url"].endswith(f"/checkout/{body['client_secret']}/")


def test_reverse_charge_for_a_business_with_a_valid_vat_number(api, make_product):
    product = make_product(prices=[{"currency": "eur", "type": "fixed", "amount": 10000}])
    response = create(
        api,
        product_id=str(product.pk),
        currency="eur",
        billing_address={"country": "FR"},
        is_business=True,
        customer_tax_id="FR40303265045",
    )
    body = response.json()
    assert (body["tax"], body["total"], body["reverse_charge"]) == (0, 10000, True)


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda p: {"product_id": "00000000-0000-0000-0000-000000000000"}, "product_id"),
        (lambda p: {"product_id": "not-a-uuid"}, "product_id"),
        (lambda p: {"product_id": str(p["fixed"].pk), "currency": "jpy"}, "currency"),
        (
            lambda p: {
                "product_id": str(p["fixed"].pk),
                "price_id": str(p["fixed"].prices.get().pk),
                "currency": "eur",
            },
            "currency",
        ),
        (
            lambda p: {"product_id": str(p["custom"].pk), "amount": 100},
            "amount",
        ),  # below the product's minimum
        (
            lambda p: {"product_id": str(p["tiny"].pk), "amount": 30},
            "amount",
        ),  # below Stripe's minimum charge
        (lambda p: {"product_id": str(p["seats"].pk), "seats": 11}, "seats"),
        (lambda p: {"product_id": str(p["fixed"].pk), "discount_code": "NOPE"}, "discount_code"),
        (lambda p: {"product_id": str(p["fixed"].pk), "discount_code": "OLD"}, "discount_code"),
        (lambda p: {"product_id": str(p["fixed"].pk), "trial_days": 7}, "trial_days"),
        (lambda p: {"product_id": str(p["fixed"].pk), "seats": "many"}, "seats"),
        (lambda p: {"product_id": str(p["fixed"].pk), "customer_email": "x" * 300}, "customer_email"),
    ],
)
def test_bad_input_is_a_field_error_and_creates_nothing(api, org, make_product, build, field):
    products = {
        "fixed": make_product("Fixed"),
        "custom": make_product(
            "Tip jar", prices=[{"currency": "usd", "type": "custom", "minimum_amount": 500}]
        ),
        "tiny": make_product("Tiny", prices=[{"currency": "usd", "type": "custom", "minimum_amount": 0}]),
        "seats": make_product(
            "Seats",
            recurring="month",
            prices=[
                {
                    "currency": "usd",
                    "type": "seat_based",
                    "seat_tier_mode": "volume",
                    "minimum_seats": 1,
                    "maximum_seats": 10,
                    "seat_tiers": [{"up_to": None, "unit_amount": 1000}],
                }
            ],
        ),
    }
    old = catalog.discount_create(
        organization=org,
        name="Old",
        code="OLD",
        type="percentage",
        basis_points=1000,
        ends_at=clock.now() + timedelta(days=1),
    )
    with time_machine.travel(old.ends_at + timedelta(seconds=1)):
        response = create(api, **build(products))
    assert response.status_code == 400, response.json()
    assert field in [e["field"] for e in response.json()["errors"]], response.json()
    assert not Checkout.objects.exists()


def test_public_endpoints_need_only_the_client_secret(api, ebook):
    secret = create(api, product_id=str(ebook.pk)).json()["client_secret"]
    from rest_framework.test import APIClient

    browser = APIClient()
    page = browser.get(f"/v1/checkouts/client/{secret}")
    assert page.status_code == 200
    assert page.json()["product_name"] == "E-book"
    assert "metadata" not in page.json()
    updated = browser.patch(
        f"/v1/checkouts/client/{secret}", {"customer_email": "Zed@Example.com"}, format="json"
    )
    assert updated.json()["customer_email"] == "zed@example.com"
    assert browser.get("/v1/checkouts/client/cs_secret_wrong").status_code == 404


def test_confirm_without_a_payment_method_is_refused(api, ebook):
    secret = create(api, product_id=str(ebook.pk), customer_email="a@example.com").json()["client_secret"]
    response = api.post(f"/v1/checkouts/client/{secret}/confirm", {}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "payment_method_id"
    assert Checkout.objects.get().status == "open"
    assert not Payment.objects.exists() and not Order.objects.exists()


def test_confirming_an_expired_checkout_is_refused(api, ebook):
    secret = create(api, product_id=str(ebook.pk), customer_email="a@example.com").json()["client_secret"]
    with time_machine.travel(clock.now() + timedelta(hours=25)):
        response = api.post(
            f"/v1/checkouts/client/{secret}/confirm", {"payment_method_id": "pm_x"}, format="json"
        )
    assert response.status_code == 409
    assert response.json()["code"] == "checkout_expired"
    assert not Payment.objects.exists()


def test_confirming_a_paid_checkout_again_is_refused(api, make_product):
    free = make_product("Free", prices=[{"currency": "usd", "type": "free"}])
    secret = create(api, product_id=str(free.pk), customer_email="a@example.com").json()["client_secret"]
    assert (
        api.post(f"/v1/checkouts/client/{secret}/confirm", {}, format="json").json()["status"] == "succeeded"
    )
    again = api.post(f"/v1/checkouts/client/{secret}/confirm", {}, format="json")
    assert (again.status_code, again.json()["code"]) == (409, "checkout_succeeded")
    assert Order.objects.count() == 1


def test_an_exhausted_discount_code_is_a_field_error(api, org, make_product):
    product = make_product()
    catalog.discount_create(
        organization=org, name="Gone", code="GONE", type="percentage", basis_points=1000, max_redemptions=1
    )
    first = create(
        api, product_id=str(product.pk), discount_code="GONE", customer_email="a@example.com"
    ).json()
    from billing.catalog.models import DiscountRedemption

    DiscountRedemption.objects.create(
        organization=org,
        discount_id=first["discount_id"],
        customer_email="someone@example.com",
        status="redeemed",
    )
    response = create(api, product_id=str(product.pk), discount_code="GONE")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "discount_code"
