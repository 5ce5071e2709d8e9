"""The hosted checkout page: its views through Django's test client, then a customer paying
in headless Chromium against localstripe (its fake Stripe.js included).

The browser tests are skipped when /usr/bin/chromium is missing (scripts/ensure-chromium.sh
installs it); the view tests always run.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.test import Client

from billing.catalog import services as catalog
from billing.checkout import services
from billing.checkout.models import Checkout
from billing.orders.models import Order
from core import clock
from tests.e2e.conftest import CHROMIUM_MISSING, SKIP_REASON

SUCCEEDS, DECLINES_ON_ATTACH, DECLINES_ON_CHARGE = "4242424242424242", "4000000000000002", "4000000000000341"
SCREENSHOTS = Path("/tmp")


def open_checkout(org, product, **kwargs) -> Checkout:
    return services.checkout_create(organization=org, product_id=product.pk, **kwargs)


def page_url(checkout: Checkout, suffix: str = "") -> str:
    return f"/checkout/{checkout.client_secret}/{suffix}"


def form_data(**overrides) -> dict:
    data = {
        "customer_email": "ada@example.com",
        "customer_name": "Ada Lovelace",
        "country": "US",
        "customer_tax_id": "",
        "discount_code": "",
    }
    data.update(overrides)
    return data


def htmx_post(client: Client, url: str, data: dict):
    return client.post(url, data, HTTP_HX_REQUEST="true")


def text(response) -> str:
    return response.content.decode()


def slot(html: str, name: str) -> str:
    """The text of the error slot ``name`` in a page or an htmx response."""
    match = re.search(rf'<p[^>]*id="error-{name}"[^>]*>(.*?)</p>', html, re.S)
    assert match, f"no error slot {name!r}"
    return match.group(1).strip()


# --- the page --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_page_shows_merchant_product_price_and_form(client, org, ebook, settings):
    checkout = open_checkout(org, ebook)
    response = client.get(page_url(checkout))
    assert response.status_code == 200
    html = text(response)
    for expected in ("Acme", "E-book", "$20.00", "Pay $20.00", "One-time purchase", "The complete guide"):
        assert expected in html
    for name in (
        "customer_email",
        "customer_name",
        "country",
        "is_business",
        "customer_tax_id",
        "discount_code",
    ):
        assert f'name="{name}"' in html
    assert 'name="csrfmiddlewaretoken"' in html
    assert '<option value="FR">France</option>' in html
    assert 'id="card-element"' in html
    assert f'src="{settings.STRIPE_API_HOST}/js.stripe.com/v3/"' in html
    assert "django_htmx/htmx-2.min.js" in html
    assert response["Cache-Control"].startswith("max-age=0")


@pytest.mark.django_db
def test_production_page_loads_stripe_js_from_stripe_and_offers_no_dev_endpoint(client, org, ebook, settings):
    del settings.STRIPE_API_HOST
    checkout = open_checkout(org, ebook)
    html = text(client.get(page_url(checkout)))
    assert 'src="https://js.stripe.com/v3/"' in html
    assert '"devPaymentMethodUrl": ""' in html
    response = client.post(page_url(checkout, "dev/payment-method/"), "{}", content_type="application/json")
    assert response.status_code == 404


@pytest.mark.django_db
def test_subscription_with_trial_says_every_month_and_start_trial(client, org, monthly):
    checkout = open_checkout(org, monthly, trial_days=14)
    html = text(client.get(page_url(checkout)))
    assert "14 days free" in html
    assert "Then $20.00 every month" in html
    assert "Start trial" in html
    assert re.search(r'id="summary-due">\$0\.00<', html)
    assert 'data-needs-card="true"' in html  # the subscription renews: the card is kept


@pytest.mark.django_db
def test_a_first_payment_discount_says_what_later_periods_cost(client, org, monthly):
    from billing.catalog import services as catalog

    catalog.discount_create(
        organization=org, name="Launch", code="LAUNCH20", type="percentage", basis_points=2000
    )
    checkout = open_checkout(org, monthly, discount_code="LAUNCH20")
    html = text(client.get(page_url(checkout)))
    assert "charge your card $16.00 today, then $20.00 every month until you cancel" in html


@pytest.mark.django_db
def test_unknown_client_secret_is_a_404_page(client):
    response = client.get("/checkout/cs_secret_nope/")
    assert response.status_code == 404
    assert "This checkout link isn't valid" in text(response)
    assert client.post("/checkout/cs_secret_nope/confirm/", form_data()).status_code == 404


@pytest.mark.django_db
def test_expired_checkout_says_so_and_cannot_be_paid(client, org, ebook):
    checkout = open_checkout(org, ebook)
    Checkout.objects.filter(pk=checkout.pk).update(expires_at=clock.now() - timedelta(minutes=1))
    response = client.get(page_url(checkout))
    assert response.status_code == 410
    assert "This checkout has expired" in text(response)
    refused = htmx_post(client, page_url(checkout, "confirm/"), form_data())
    assert refused["HX-Refresh"] == "true"


@pytest.mark.django_db
def test_paid_checkout_links_to_its_success_page(client, org, make_product):
    free = make_product("Starter kit", prices=[{"currency": "usd", "type": "free"}])
    checkout = services.checkout_confirm(checkout=open_checkout(org, free, customer_email="a@example.com"))
    html = text(client.get(page_url(checkout)))
    assert "This checkout is already paid" in html
    assert f'href="{page_url(checkout, "success/")}"' in html


# --- the htmx summary ------------------------------------------------------------------------


@pytest.mark.django_db
def test_billing_country_adds_vat_to_the_summary(client, org, ebook):
    checkout = open_checkout(org, ebook)
    response = htmx_post(client, page_url(checkout, "update/"), form_data(country="FR"))
    assert response.status_code == 200
    html = text(response)
    assert html.lstrip().startswith('<section id="summary"')
    assert "VAT (20%)" in html
    assert re.search(r'id="summary-tax">\$4\.00<', html)
    assert re.search(r'id="summary-total">\$24\.00<', html)
    assert 'id="expected-due" name="expected_due" value="2400" hx-swap-oob="true"' in html
    assert re.search(r'<span id="pay-label" hx-swap-oob="true">Pay \$24\.00</span>', html)
    checkout.refresh_from_db()
    assert (checkout.tax, checkout.total, checkout.billing_address) == (400, 2400, {"country": "FR"})
    assert (checkout.customer_email, checkout.customer_name) == ("ada@example.com", "Ada Lovelace")


@pytest.mark.django_db
def test_valid_eu_vat_id_of_a_business_is_reverse_charged(client, org, ebook):
    checkout = open_checkout(org, ebook)
    data = form_data(country="FR", is_business="1", customer_tax_id="FR40303265045")
    html = text(htmx_post(client, page_url(checkout, "update/"), data))
    assert "VAT reverse charge" in html
    assert re.search(r'id="summary-total">\$20\.00<', html)


@pytest.mark.django_db
def test_invalid_discount_code_shows_next_to_the_field_and_the_rest_still_applies(client, org, ebook):
    checkout = open_checkout(org, ebook)
    html = text(
        htmx_post(client, page_url(checkout, "update/"), form_data(country="FR", discount_code="NOPE"))
    )
    assert slot(html, "discount_code") == "This discount code does not exist."
    assert 'id="error-discount_code" role="alert" hx-swap-oob="true"' in html
    assert slot(html, "country") == ""
    checkout.refresh_from_db()
    assert checkout.discount is None and checkout.tax == 400


@pytest.mark.django_db
def test_discount_code_applies_and_a_full_discount_makes_it_free(client, org, ebook):
    catalog.discount_create(organization=org, name="Ten", code="SAVE10", type="percentage", basis_points=1000)
    catalog.discount_create(organization=org, name="All", code="ALL", type="percentage", basis_points=10000)
    checkout = open_checkout(org, ebook)
    html = text(htmx_post(client, page_url(checkout, "update/"), form_data(discount_code="save10")))
    assert "SAVE10" in html and "10% off" in html
    assert re.search(r'id="summary-discount">\u2212\$2\.00<', html)
    assert re.search(r'id="summary-total">\$18\.00<', html)

    html = text(htmx_post(client, page_url(checkout, "update/"), form_data(discount_code="ALL")))
    assert ">Get it free</span>" in html
    assert 'data-needs-card="false"' in html


@pytest.mark.django_db
def test_invalid_email_is_reported_and_the_other_fields_still_apply(client, org, ebook):
    checkout = open_checkout(org, ebook)
    html = text(
        htmx_post(client, page_url(checkout, "update/"), form_data(customer_email="nope", country="FR"))
    )
    assert slot(html, "customer_email") == "Enter a valid email address."
    checkout.refresh_from_db()
    assert checkout.tax == 400 and checkout.customer_email == ""


@pytest.mark.django_db
def test_seats_recompute_the_subtotal(client, org, make_product):
    team = make_product(
        "Seats",
        recurring="month",
        prices=[
            {
                "currency": "usd",
                "type": "seat_based",
                "seat_tier_mode": "volume",
                "seat_tiers": [{"up_to": None, "unit_amount": 800}],
                "maximum_seats": 50,
            }
        ],
    )
    checkout = open_checkout(org, team)
    assert 'name="seats"' in text(client.get(page_url(checkout)))
    html = text(htmx_post(client, page_url(checkout, "update/"), form_data(seats="3")))
    assert re.search(r'id="summary-subtotal">\$24\.00<', html) and "3 seats" in html
    html = text(htmx_post(client, page_url(checkout, "update/"), form_data(seats="99")))
    assert slot(html, "seats") == "Seats must be between 1 and 50."


@pytest.mark.django_db
def test_pay_what_you_want_amount_is_typed_in_major_units(client, org, make_product):
    tip = make_product("Tip jar", prices=[{"currency": "usd", "type": "custom", "minimum_amount": 500}])
    checkout = open_checkout(org, tip, amount=500)
    html = text(htmx_post(client, page_url(checkout, "update/"), form_data(amount="12.50")))
    assert re.search(r'id="summary-total">\$12\.50<', html)
    html = text(htmx_post(client, page_url(checkout, "update/"), form_data(amount="1")))
    assert "at least 500" in slot(html, "amount")
    html = text(htmx_post(client, page_url(checkout, "update/"), form_data(amount="abc")))
    assert slot(html, "amount") == "Enter an amount like 12.50."


@pytest.mark.django_db
def test_update_requires_the_csrf_token(org, ebook):
    checkout = open_checkout(org, ebook)
    strict = Client(enforce_csrf_checks=True)
    assert strict.post(page_url(checkout, "update/"), form_data()).status_code == 403
    page = strict.get(page_url(checkout))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', text(page)).group(1)
    assert (
        strict.post(page_url(checkout, "update/"), {**form_data(), "csrfmiddlewaretoken": token}).status_code
        == 200
    )


# --- confirming ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_confirm_without_a_payment_method_says_so_and_stays_open(client, org, ebook):
    checkout = open_checkout(org, ebook)
    response = htmx_post(client, page_url(checkout, "confirm/"), form_data(expected_due="2000"))
    assert response.status_code == 200 and "HX-Redirect" not in response
    assert slot(text(response), "payment") == "A payment method is required."
    checkout.refresh_from_db()
    assert checkout.status == "open" and not Order.objects.exists()


@pytest.mark.django_db
def test_confirm_requires_email_and_country(client, org, ebook):
    checkout = open_checkout(org, ebook)
    html = text(htmx_post(client, page_url(checkout, "confirm/"), form_data(customer_email="", country="")))
    assert slot(html, "customer_email") == "Enter your email address."
    assert slot(html, "country") == "Select your country."
    checkout.refresh_from_db()
    assert checkout.status == "open"


@pytest.mark.django_db
def test_confirm_refuses_an_amount_the_customer_did_not_see(client, org, ebook):
    checkout = open_checkout(org, ebook)
    html = text(
        htmx_post(client, page_url(checkout, "confirm/"), form_data(country="FR", expected_due="2000"))
    )
    assert "The amount due is now $24.00" in slot(html, "form")
    checkout.refresh_from_db()
    assert checkout.status == "open"


@pytest.mark.django_db
def test_free_checkout_confirms_without_a_card_and_shows_the_invoice(client, org, make_product):
    free = make_product("Starter kit", prices=[{"currency": "usd", "type": "free"}])
    checkout = open_checkout(org, free)
    response = htmx_post(client, page_url(checkout, "confirm/"), form_data(expected_due="0"))
    assert response["HX-Redirect"] == page_url(checkout, "success/")
    order = Order.objects.get()
    success = text(client.get(page_url(checkout, "success/")))
    assert "Thank you" in success and order.invoice_number in success and "Starter kit" in success


@pytest.mark.django_db
def test_without_javascript_a_free_checkout_posts_and_redirects(client, org, make_product):
    free = make_product("Starter kit", prices=[{"currency": "usd", "type": "free"}])
    checkout = open_checkout(org, free, success_url="https://shop.example.com/thanks?ref=1")
    response = client.post(page_url(checkout, "confirm/"), form_data())
    assert response.status_code == 302
    assert response["Location"] == f"https://shop.example.com/thanks?ref=1&checkout_id={checkout.pk}"


@pytest.mark.django_db
def test_payment_needing_3d_secure_hands_the_client_secret_to_stripe_js(
    client, org, ebook, customer, monkeypatch
):
    from billing.payments import services as payments
    from billing.payments.models import Payment

    def confirm_needing_action(*, checkout, payment_method_id):
        Checkout.objects.filter(pk=checkout.pk).update(status="confirmed", customer=customer)
        payment = payments.payment_create(
            organization=org,
            customer=customer,
            reference=checkout.reference,
            amount=2000,
            currency="usd",
            trigger="purchase",
        )
        Payment.objects.filter(pk=payment.pk).update(status="requires_action", client_secret="pi_1_secret_2")
        checkout.refresh_from_db()
        return checkout

    monkeypatch.setattr(services, "checkout_confirm", confirm_needing_action)
    checkout = open_checkout(org, ebook)
    response = htmx_post(client, page_url(checkout, "confirm/"), form_data(payment_method_id="pm_x"))
    assert response["HX-Trigger"] == '{"checkout:authenticate": {"clientSecret": "pi_1_secret_2"}}'

    processing = text(client.get(page_url(checkout)))  # a reload while the bank waits
    assert "Processing your payment" in processing
    assert 'data-action-secret="pi_1_secret_2"' in processing
    assert client.get(page_url(checkout, "status/")).json() == {"status": "confirmed", "redirect": None}


@pytest.mark.django_db
def test_status_points_to_where_the_customer_goes_next(client, org, make_product):
    free = make_product("Starter kit", prices=[{"currency": "usd", "type": "free"}])
    checkout = open_checkout(org, free, customer_email="a@example.com")
    assert client.get(page_url(checkout, "status/")).json() == {
        "status": "open",
        "redirect": page_url(checkout),
    }
    services.checkout_confirm(checkout=checkout)
    assert client.get(page_url(checkout, "status/")).json() == {
        "status": "succeeded",
        "redirect": page_url(checkout, "success/"),
    }


@pytest.mark.django_db
def test_success_page_of_an_unpaid_checkout_goes_back_to_the_page(client, org, ebook):
    checkout = open_checkout(org, ebook)
    response = client.get(page_url(checkout, "success/"))
    assert response.status_code == 302 and response["Location"] == page_url(checkout)


# --- in a browser ----------------------------------------------------------------------------

browser = pytest.mark.skipif(CHROMIUM_MISSING, reason=SKIP_REASON)


def fill_card(page, number: str) -> None:
    """localstripe's card element: five plain inputs, told apart by their placeholder."""
    for placeholder, value in (("number", number), ("exp_month", "12"), ("exp_year", "30"), ("cvc", "123")):
        page.locator(f"#card-element input[placeholder={placeholder}]").fill(value)


def fill_customer(page) -> None:
    from playwright.sync_api import expect

    page.get_by_label("Email").fill("ada@example.com")
    page.get_by_label("Full name").fill("Ada Lovelace")
    page.get_by_label("Country or region").select_option("FR")
    expect(page.locator("#summary-tax")).to_have_text("$4.00")  # the htmx summary came back


@browser
@pytest.mark.localstripe
@pytest.mark.django_db(transaction=True)
def test_customer_pays_by_card_and_sees_the_invoice_number(
    browser_page, live_server, stripe_client, org, ebook
):
    from playwright.sync_api import expect

    page = browser_page.page
    checkout = open_checkout(org, ebook)
    page.goto(live_server.url + page_url(checkout))
    expect(page.locator("#card-element input[placeholder=number]")).to_be_visible()  # fake Stripe.js loaded
    fill_customer(page)
    expect(page.get_by_role("button", name="Pay $24.00")).to_be_visible()
    fill_card(page, "4242 4242 4242 4242")
    page.screenshot(path=str(SCREENSHOTS / "checkout_filled.png"), full_page=True)

    page.get_by_role("button", name="Pay $24.00").click()
    page.wait_for_url(re.compile(r"/success/$"))
    order = Order.objects.get()
    expect(page.locator("#invoice-number")).to_have_text(order.invoice_number)
    expect(page.locator("#order-total")).to_have_text("$24.00")
    expect(page.get_by_role("heading", name="Thank you for your purchase!")).to_be_visible()
    page.screenshot(path=str(SCREENSHOTS / "checkout_success.png"), full_page=True)

    assert (order.status, order.total, order.tax) == ("paid", 2400, 400)
    assert order.customer.email == "ada@example.com"
    checkout.refresh_from_db()
    assert checkout.status == "succeeded"
    assert browser_page.js_errors == []


@browser
@pytest.mark.localstripe
@pytest.mark.django_db(transaction=True)
def test_declined_cards_show_a_message_and_the_same_page_then_pays(
    browser_page, live_server, stripe_client, org, ebook
):
    from playwright.sync_api import expect

    page = browser_page.page
    checkout = open_checkout(org, ebook)
    page.goto(live_server.url + page_url(checkout))
    fill_customer(page)
    pay = page.get_by_role("button", name="Pay $24.00")
    payment_error = page.locator("#error-payment")

    fill_card(page, DECLINES_ON_ATTACH)
    pay.click()
    expect(payment_error).to_have_text("Your card was declined.")
    expect(pay).to_be_enabled()
    page.screenshot(path=str(SCREENSHOTS / "checkout_declined.png"), full_page=True)
    checkout.refresh_from_db()
    assert checkout.status == "open" and not Order.objects.exists()

    fill_card(page, DECLINES_ON_CHARGE)
    pay.click()
    expect(payment_error).to_contain_text("declined")
    expect(pay).to_be_enabled()
    checkout.refresh_from_db()
    assert checkout.status == "open" and not Order.objects.exists()

    fill_card(page, SUCCEEDS)
    pay.click()
    page.wait_for_url(re.compile(r"/success/$"))
    expect(page.locator("#invoice-number")).to_have_text(Order.objects.get().invoice_number)
    checkout.refresh_from_db()
    assert checkout.status == "succeeded"
    assert browser_page.js_errors == []
