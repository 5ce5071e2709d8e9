"""Checkout, payment and Stripe event pages name what they show and link to it (customer,
product, order by invoice number, subscription), in bounded queries, with fees formatted."""

import re

import pytest
from django.urls import reverse

from accounts import services as account_services
from billing.payments import events
from billing.payments.models import ExternalEvent
from tests.backoffice.test_billing_pages import (
    html_of,
    make_checkout,
    make_order,
    make_payment,
    make_product,
    make_subscription,
)
from tests.disputes import events as dispute_events
from tests.payments import stripe_events

pytestmark = pytest.mark.django_db

CHECKOUTS = reverse("admin:checkout_checkout_changelist")
PAYMENTS = reverse("admin:payments_payment_changelist")
EVENTS = reverse("admin:payments_externalevent_changelist")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def change(model: str, obj) -> str:
    return reverse(f"admin:{model}_change", args=[obj.pk])


def visible_text(html: str) -> str:
    """The page's text without tags and attributes (where ids in links are fine)."""
    body = html.split('id="content"', 1)[-1]
    return re.sub(r"<[^>]+>", " ", body)


@pytest.fixture
def sales(org):
    """Customers who bought through checkouts (order numbered, subscription) and renewed."""
    product, price = make_product(org, name="Pro plan")
    rows = []
    for i in range(12):
        buyer = account_services.customer_create(
            organization=org, email=f"buyer{i}@example.com", name=f"Ada {i}"
        )
        checkout = make_checkout(org, buyer, product, price, status="succeeded")
        subscription = make_subscription(org, buyer, product, price, checkout=checkout)
        order = make_order(
            org,
            buyer,
            checkout=checkout,
            subscription=subscription,
            product=product,
            invoice_number=f"ACME-{i + 1:05d}",
        )
        renewal = make_order(
            org, buyer, subscription=subscription, product=product, invoice_number=f"ACME-{i + 101:05d}"
        )
        paid_checkout = make_payment(
            org,
            buyer,
            checkout.reference,
            processor_payment_id=f"pi_{i}",
            processor_charge_id=f"ch_{i}",
            fee=88,
            net=1912,
        )
        paid_renewal = make_payment(org, buyer, renewal.reference, processor_payment_id=f"pi_r{i}")
        rows.append(
            {
                "customer": buyer,
                "checkout": checkout,
                "subscription": subscription,
                "order": order,
                "renewal": renewal,
                "checkout_payment": paid_checkout,
                "renewal_payment": paid_renewal,
            }
        )
    return {"product": product, "rows": rows}


def test_checkout_list_links_the_product_and_names_the_customer(
    backoffice, sales, django_assert_max_num_queries
):
    with django_assert_max_num_queries(8):
        html = html_of(backoffice.get(CHECKOUTS))
    first = sales["rows"][0]
    assert f'<a href="{change("catalog_product", sales["product"])}">Pro plan</a>' in html
    assert (
        f'<a href="{change("accounts_customer", first["customer"])}">Ada 0 · buyer0@example.com</a>' in html
    )
    assert f'<a href="{change("orders_order", first["order"])}">ACME-00001</a>' in html
    sub = change("subscriptions_subscription", first["subscription"])
    assert f'<a href="{sub}">Pro plan subscription</a>' in html
    assert not UUID.search(visible_text(html)), "raw ids shown instead of names"


def test_checkout_detail_links_customer_product_order_and_subscription(backoffice, sales):
    row = sales["rows"][3]
    html = html_of(backoffice.get(change("checkout_checkout", row["checkout"])))
    assert f'<a href="{change("accounts_customer", row["customer"])}">Ada 3 · buyer3@example.com</a>' in html
    assert f'<a href="{change("catalog_product", sales["product"])}">Pro plan</a>' in html
    assert f'<a href="{change("orders_order", row["order"])}">ACME-00004</a>' in html
    assert change("subscriptions_subscription", row["subscription"]) in html


def test_payment_list_says_what_each_payment_is_for_in_bounded_queries(
    backoffice, sales, django_assert_max_num_queries
):
    with django_assert_max_num_queries(10):  # one query per kind of reference, whatever the rows
        html = html_of(backoffice.get(PAYMENTS))
    row = sales["rows"][5]
    assert f'<a href="{change("orders_order", row["renewal"])}">ACME-00106</a>' in html
    # A checkout's payment names the order it became, and links the checkout too.
    assert f'<a href="{change("orders_order", row["order"])}">ACME-00006</a>' in html
    assert f'<a href="{change("checkout_checkout", row["checkout"])}">via checkout</a>' in html
    assert f'<a href="{change("catalog_product", sales["product"])}">Pro plan</a>' in html
    assert f'<a href="{change("accounts_customer", row["customer"])}">Ada 5 · buyer5@example.com</a>' in html
    sub = change("subscriptions_subscription", row["subscription"])
    assert f'<a href="{sub}">Pro plan subscription</a>' in html
    assert not UUID.search(visible_text(html)), "raw ids shown instead of names"
    assert "order:" not in visible_text(html) and "checkout:" not in visible_text(html)


def test_payment_detail_links_order_product_subscription_and_formats_fees(backoffice, sales):
    row = sales["rows"][2]
    html = html_of(backoffice.get(change("payments_payment", row["checkout_payment"])))
    assert f'<a href="{change("orders_order", row["order"])}">ACME-00003</a>' in html
    assert f'<a href="{change("checkout_checkout", row["checkout"])}">checkout of Pro plan</a>' in html
    assert change("subscriptions_subscription", row["subscription"]) in html
    assert f'<a href="{change("accounts_customer", row["customer"])}">Ada 2 · buyer2@example.com</a>' in html
    assert "$0.88" in html and "$19.12" in html  # processor fee and net, formatted
    assert not re.search(r">\s*(88|1912)\s*<", html), "a fee shown in minor units"


def test_a_payment_whose_reference_is_unknown_still_renders(backoffice, org, customer):
    payment = make_payment(org, customer, "order:not-a-uuid")
    assert "order:not-a-uuid" in html_of(backoffice.get(change("payments_payment", payment)))
    assert "order:not-a-uuid" in html_of(backoffice.get(PAYMENTS))


@pytest.fixture
def stripe_event_rows(sales):
    """Events about those payments, each carrying different ids: a PaymentIntent (our id in
    its metadata), a charge, a dispute (charge id), a refund (PaymentIntent id)."""
    made = []
    for i, row in enumerate(sales["rows"][:8]):
        payment = row["checkout_payment"]
        if i % 4 == 0:
            obj = stripe_events.payment_intent(payment)
            event_type = "payment_intent.succeeded"
        elif i % 4 == 1:
            obj = {
                "id": payment.processor_charge_id,
                "object": "charge",
                "payment_intent": None,
                "amount": 2000,
            }
            event_type = "charge.updated"
        elif i % 4 == 2:
            obj = dispute_events.dispute(payment, id=f"dp_{i}")
            obj["payment_intent"] = None
            event_type = "charge.dispute.created"
        else:
            obj = {"id": f"re_{i}", "object": "refund", "payment_intent": payment.processor_payment_id}
            event_type = "refund.created"
        event, _ = events.external_event_record(payload=stripe_events.event(event_type, obj))
        made.append((event, row))
    unrelated, _ = events.external_event_record(
        payload=stripe_events.event("customer.created", {"id": "cus_1"})
    )
    return made, unrelated


def test_external_events_link_to_their_order_and_customer_in_bounded_queries(
    backoffice, stripe_event_rows, django_assert_max_num_queries
):
    made, _ = stripe_event_rows
    with django_assert_max_num_queries(10):
        html = html_of(backoffice.get(EVENTS))
    for event, row in made:
        assert (
            f'<a href="{change("orders_order", row["order"])}">{row["order"].invoice_number}</a>' in html
        ), event.type
        name = f"{row['customer'].name} · {row['customer'].email}"
        assert f'<a href="{change("accounts_customer", row["customer"])}">{name}</a>' in html, event.type
    assert ExternalEvent.objects.count() == len(made) + 1


def test_external_event_detail_says_what_it_concerns(backoffice, stripe_event_rows):
    made, unrelated = stripe_event_rows
    event, row = made[0]
    html = html_of(backoffice.get(change("payments_externalevent", event)))
    assert f'<a href="{change("orders_order", row["order"])}">ACME-00001</a>' in html
    assert change("payments_payment", row["checkout_payment"]) in html
    assert change("subscriptions_subscription", row["subscription"]) in html
    assert "buyer0@example.com" in html and "$20.00" in html

    html = html_of(backoffice.get(change("payments_externalevent", unrelated)))
    assert "No payment of ours" in html
