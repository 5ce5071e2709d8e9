"""The billing pages of the backoffice: checkouts, orders, subscriptions, the customer
timeline and the money cards of the dashboard. Rows are built through the ORM."""

import re
from datetime import timedelta
from itertools import count

import pytest
from django.urls import reverse

from accounts import services as account_services
from billing.catalog.models import Discount, Price, Product
from billing.checkout.models import Checkout
from billing.orders.models import Order, OrderItem
from billing.payments.models import Payment
from billing.subscriptions.models import Subscription
from core import clock
from core.backoffice.timeline import customer_timeline

pytestmark = pytest.mark.django_db

ROWS = 30
_serial = count(1)


# --- builders ----------------------------------------------------------------------------


def make_product(org, name="Pro", interval="month", interval_count=1, currency="usd", amount=2000):
    product = Product.objects.create(
        organization=org, name=name, recurring_interval=interval, recurring_interval_count=interval_count
    )
    price = Price.objects.create(
        organization=org, product=product, currency=currency, type=Price.Type.FIXED, amount=amount
    )
    return product, price


def make_checkout(org, customer, product, price, **kwargs):
    subtotal = kwargs.pop("subtotal", price.amount)
    discount_amount = kwargs.pop("discount_amount", 0)
    tax = kwargs.pop("tax", 0)
    inclusive = kwargs.pop("tax_inclusive", False)
    net = subtotal - discount_amount
    fields = {
        "organization": org,
        "customer": customer,
        "customer_email": customer.email if customer else "",
        "product": product,
        "price": price,
        "currency": price.currency,
        "expires_at": clock.now() + timedelta(hours=24),
        "subtotal": subtotal,
        "discount_amount": discount_amount,
        "net": net,
        "tax": tax,
        "total": net if inclusive else net + tax,
        "tax_inclusive": inclusive,
        **kwargs,
    }
    return Checkout.objects.create(**fields)


def make_order(
    org, customer, *, subtotal=2000, discount_amount=0, tax=0, tax_inclusive=False, paid=True, **kwargs
):
    net = subtotal - discount_amount
    total = net if tax_inclusive else net + tax
    fields = {
        "organization": org,
        "customer": customer,
        "status": Order.Status.PAID if paid else Order.Status.PENDING,
        "billing_reason": "purchase",
        "currency": "usd",
        "subtotal": subtotal,
        "discount_amount": discount_amount,
        "net": net,
        "tax": tax,
        "total": total,
        "due": total,
        "tax_inclusive": tax_inclusive,
        "paid_at": clock.now() if paid else None,
        "invoice_number": f"{org.invoice_prefix}-{next(_serial):05d}" if paid else None,
        **kwargs,
    }
    order = Order.objects.create(**fields)
    OrderItem.objects.create(order=order, label="Pro", amount=subtotal)
    return order


def make_subscription(org, customer, product, price, *, status="active", amount=None, **kwargs):
    now = clock.now()
    fields = {
        "organization": org,
        "customer": customer,
        "product": product,
        "price": price,
        "status": status,
        "currency": price.currency,
        "amount": price.amount if amount is None else amount,
        "billing_anchor": now,
        "current_period_start": now,
        "current_period_end": now + timedelta(days=30),
        **kwargs,
    }
    return Subscription.objects.create(**fields)


def make_payment(org, customer, reference, *, attempt=1, status="succeeded", amount=2000, **kwargs):
    now = clock.now()
    fields = {
        "organization": org,
        "customer": customer,
        "reference": reference,
        "attempt": attempt,
        "trigger": "purchase",
        "processor": "stripe",
        "status": status,
        "amount": amount,
        "currency": "usd",
        "idempotency_key": f"{reference}:attempt:{attempt}",
        "succeeded_at": now if status == "succeeded" else None,
        "failed_at": now if status == "failed" else None,
        **kwargs,
    }
    return Payment.objects.create(**fields)


def today() -> str:
    """The start of today as the admin's date filters write it."""
    return str(clock.now().replace(hour=0, minute=0, second=0, microsecond=0))


def html_of(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def results(client, url, **params) -> list:
    return list(client.get(url, params).context["cl"].result_list)


@pytest.fixture
def buyers(make_org):
    orgs = [make_org(f"Merchant {i}") for i in range(3)]
    return [
        account_services.customer_create(
            organization=orgs[i % 3], email=f"buyer{i}@example.com", name=f"Buyer {i}"
        )
        for i in range(ROWS)
    ]


@pytest.fixture
def catalog(buyers):
    """A monthly product with a USD price per organization."""
    orgs = {c.organization_id: c.organization for c in buyers}
    return {org_id: make_product(org) for org_id, org in orgs.items()}


CHECKOUTS = reverse("admin:checkout_checkout_changelist")
ORDERS = reverse("admin:orders_order_changelist")
SUBSCRIPTIONS = reverse("admin:subscriptions_subscription_changelist")


# --- checkouts ---------------------------------------------------------------------------


@pytest.fixture
def checkouts(buyers, catalog):
    rows = []
    for i, buyer in enumerate(buyers):
        product, price = catalog[buyer.organization_id]
        status = "succeeded" if i % 3 == 0 else "open"
        rows.append(make_checkout(buyer.organization, buyer, product, price, status=status, tax=100 * i))
    return rows


def test_checkout_list_has_bounded_queries(backoffice, checkouts, django_assert_max_num_queries):
    with django_assert_max_num_queries(8):
        html = html_of(backoffice.get(CHECKOUTS))

    assert "buyer0@example.com" in html and "buyer29@example.com" in html
    assert "$20.00" in html and "$48.00" in html  # 2000 + 100 * 28
    assert "Merchant 2" in html
    assert 'class="bo-badge bo-badge--good">succeeded' in html
    for checkout in checkouts:
        assert checkout.client_secret not in html


def test_checkout_filters_and_search(backoffice, checkouts):
    assert len(results(backoffice, CHECKOUTS, status__exact="succeeded")) == ROWS // 3
    assert len(results(backoffice, CHECKOUTS, currency="usd")) == ROWS
    assert results(backoffice, CHECKOUTS, currency="eur") == []
    assert len(results(backoffice, CHECKOUTS, created_at__gte=today())) == ROWS

    target = checkouts[7]
    assert results(backoffice, CHECKOUTS, q=str(target.pk)) == [target]
    assert results(backoffice, CHECKOUTS, q="Buyer7@Example.com") == [target]
    assert results(backoffice, CHECKOUTS, q="buyer7@") == [target]
    # The client secret authorises payment: not a search key, not a filter.
    assert results(backoffice, CHECKOUTS, q=target.client_secret) == []
    assert backoffice.get(CHECKOUTS, {"client_secret": target.client_secret}).status_code == 400
    assert backoffice.get(CHECKOUTS, {"client_secret__startswith": "cs_"}).status_code == 400


def test_checkout_search_finds_an_email_typed_before_the_customer_existed(backoffice, org):
    product, price = make_product(org)
    checkout = make_checkout(org, None, product, price, customer_email="new@example.com")

    assert results(backoffice, CHECKOUTS, q="NEW@example.com") == [checkout]


def test_checkout_detail_shows_amounts_payments_and_result(backoffice, org, customer):
    product, price = make_product(org, amount=10000)
    discount = Discount.objects.create(
        organization=org, name="Launch", code="LAUNCH", type="percentage", basis_points=1000
    )
    checkout = make_checkout(
        org,
        customer,
        product,
        price,
        status="succeeded",
        discount=discount,
        discount_amount=1000,
        tax=1800,
        tax_rate_bps=2000,
        metadata={"campaign": "spring"},
    )
    make_payment(
        org,
        customer,
        checkout.reference,
        attempt=1,
        status="failed",
        amount=10800,
        decline_code="insufficient_funds",
        decline_message="Your card has insufficient funds.",
    )
    make_payment(org, customer, checkout.reference, attempt=2, status="succeeded", amount=10800)
    subscription = make_subscription(org, customer, product, price, checkout=checkout)
    order = make_order(org, customer, subtotal=10000, discount_amount=1000, tax=1800, checkout=checkout)

    html = html_of(backoffice.get(reverse("admin:checkout_checkout_change", args=[checkout.pk])))

    assert "$100.00" in html  # subtotal
    assert "\N{MINUS SIGN}$10.00" in html and "LAUNCH" in html
    assert "$90.00" in html  # net
    assert "$18.00" in html and "20% · added to the price" in html
    assert "$108.00" in html  # total
    assert "buyer@example.com" in html
    assert "Your card has insufficient funds." in html and "insufficient_funds" in html
    assert html.count("data-payment=") == 2
    assert reverse("admin:orders_order_change", args=[order.pk]) in html
    assert reverse("admin:subscriptions_subscription_change", args=[subscription.pk]) in html
    assert checkout.client_secret not in html
    assert "client_secret" not in html and "client secret" not in html.lower()
    assert 'name="_save"' not in html


def test_checkout_detail_tax_modes(backoffice, org, customer):
    product, price = make_product(org, amount=12000)
    inclusive = make_checkout(org, customer, product, price, tax=2000, tax_rate_bps=2000, tax_inclusive=True)
    reverse_charge = make_checkout(
        org, customer, product, price, reverse_charge=True, customer_tax_id="DE123"
    )

    html = html_of(backoffice.get(reverse("admin:checkout_checkout_change", args=[inclusive.pk])))
    assert "20% · included in the price" in html
    assert re.search(r'data-amount="total".*?\$120\.00', html, re.S)

    html = html_of(backoffice.get(reverse("admin:checkout_checkout_change", args=[reverse_charge.pk])))
    assert "0% · reverse charge" in html


# --- orders ------------------------------------------------------------------------------


@pytest.fixture
def orders(buyers):
    rows = []
    for i, buyer in enumerate(buyers):
        paid = i % 2 == 0
        rows.append(
            make_order(
                buyer.organization,
                buyer,
                subtotal=1000 + i,
                paid=paid,
                billing_reason="subscription_cycle" if i % 5 == 0 else "purchase",
                currency="eur" if i == 29 else "usd",
            )
        )
    return rows


def test_order_list_has_bounded_queries(backoffice, orders, django_assert_max_num_queries):
    with django_assert_max_num_queries(8):
        html = html_of(backoffice.get(ORDERS))

    assert orders[0].invoice_number in html
    assert "buyer28@example.com" in html and "Merchant 1" in html
    assert "$10.28" in html and "€10.29" in html
    assert 'bo-badge--warn">pending' in html and 'bo-badge--good">paid' in html


def test_order_filters_and_search(backoffice, orders):
    assert len(results(backoffice, ORDERS, status__exact="paid")) == ROWS // 2
    assert len(results(backoffice, ORDERS, billing_reason__exact="subscription_cycle")) == ROWS // 5
    assert results(backoffice, ORDERS, currency="eur") == [orders[29]]
    assert results(backoffice, ORDERS, currency="EUR") == [orders[29]]
    assert len(results(backoffice, ORDERS, created_at__gte=today())) == ROWS
    assert results(backoffice, ORDERS, created_at__lt="2000-01-01 00:00:00+00:00") == []

    target = orders[4]
    assert results(backoffice, ORDERS, q=target.invoice_number) == [target]
    assert results(backoffice, ORDERS, q=target.invoice_number.lower()) == [target]
    assert results(backoffice, ORDERS, q=str(target.pk)) == [target]
    assert results(backoffice, ORDERS, q="BUYER4@example.com") == [target]
    assert results(backoffice, ORDERS, q="nobody@example.com") == []


@pytest.fixture
def paid_order(org, customer):
    product, price = make_product(org, amount=5000)
    checkout = make_checkout(org, customer, product, price, status="succeeded", tax=1000, tax_rate_bps=2000)
    subscription = make_subscription(org, customer, product, price, checkout=checkout)
    order = make_order(
        org,
        customer,
        subtotal=5000,
        tax=1000,
        tax_rate_bps=2000,
        checkout=checkout,
        subscription=subscription,
        product=product,
        billing_reason="subscription_create",
    )
    make_payment(
        org,
        customer,
        checkout.reference,
        attempt=1,
        status="failed",
        amount=6000,
        decline_code="card_declined",
        decline_message="Your card was declined.",
    )
    make_payment(org, customer, checkout.reference, attempt=2, amount=6000)
    return order


def test_order_detail(backoffice, paid_order):
    order = paid_order
    OrderItem.objects.create(order=order, label="Extra seat", amount=0, quantity=3, proration=True)

    html = html_of(backoffice.get(reverse("admin:orders_order_change", args=[order.pk])))

    assert order.invoice_number in html
    assert "$50.00" in html and "$10.00" in html and "$60.00" in html
    assert "20% · added to the price" in html
    assert "Extra seat" in html and "proration" in html
    assert "Your card was declined." in html and html.count("data-payment=") == 2
    assert reverse("admin:checkout_checkout_change", args=[order.checkout_id]) in html
    assert reverse("admin:subscriptions_subscription_change", args=[order.subscription_id]) in html
    assert reverse("admin:accounts_customer_change", args=[order.customer_id]) in html
    assert "Download invoice (PDF)" in html
    assert reverse("admin:orders_order_invoice_pdf", args=[order.pk]) in html
    assert order.checkout.client_secret not in html


def test_order_detail_has_bounded_queries(backoffice, paid_order, django_assert_max_num_queries):
    with django_assert_max_num_queries(16):
        html_of(backoffice.get(reverse("admin:orders_order_change", args=[paid_order.pk])))


def test_invoice_pdf(backoffice, paid_order):
    url = reverse("admin:orders_order_invoice_pdf", args=[paid_order.pk])
    pytest.importorskip("billing.orders.invoice_pdf")

    response = backoffice.get(url)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    assert paid_order.invoice_number in response["Content-Disposition"]


def test_invoice_pdf_needs_the_view_permission(client, make_staff, paid_order):
    client.force_login(make_staff())  # staff without a role

    response = client.get(reverse("admin:orders_order_invoice_pdf", args=[paid_order.pk]))

    assert response.status_code == 403


def test_invoice_pdf_of_an_unknown_order(backoffice):
    url = reverse("admin:orders_order_invoice_pdf", args=["00000000-0000-0000-0000-000000000000"])
    assert backoffice.get(url).status_code == 404


# --- subscriptions -------------------------------------------------------------------------


@pytest.fixture
def subscriptions(buyers, catalog):
    rows = []
    for i, buyer in enumerate(buyers):
        product, price = catalog[buyer.organization_id]
        rows.append(
            make_subscription(
                buyer.organization,
                buyer,
                product,
                price,
                status="trialing" if i % 3 == 0 else "active",
                cancel_at_period_end=i == 5,
            )
        )
    return rows


def test_subscription_list_has_bounded_queries(backoffice, subscriptions, django_assert_max_num_queries):
    with django_assert_max_num_queries(8):
        html = html_of(backoffice.get(SUBSCRIPTIONS))

    assert "buyer0@example.com" in html and "buyer29@example.com" in html
    assert "$20.00 / month" in html
    assert 'bo-badge--info">trialing' in html and 'bo-badge--good">active' in html
    assert "Merchant 0" in html


def test_subscription_filters_and_search(backoffice, subscriptions, buyers, catalog):
    assert len(results(backoffice, SUBSCRIPTIONS, status__exact="trialing")) == ROWS // 3
    product, _ = catalog[buyers[0].organization_id]
    by_product = results(backoffice, SUBSCRIPTIONS, product=str(product.pk))
    assert {s.pk for s in by_product} == {s.pk for s in subscriptions[::3]}
    assert results(backoffice, SUBSCRIPTIONS, product="not-an-id") == []
    assert len(results(backoffice, SUBSCRIPTIONS, created_at__gte=today())) == ROWS
    assert results(backoffice, SUBSCRIPTIONS, cancel_at_period_end__exact="1") == [subscriptions[5]]
    live = results(backoffice, SUBSCRIPTIONS, status__in="trialing,active,past_due")
    assert len(live) == ROWS

    target = subscriptions[11]
    assert results(backoffice, SUBSCRIPTIONS, q=str(target.pk)) == [target]
    assert results(backoffice, SUBSCRIPTIONS, q="buyer11@example.com") == [target]


def test_subscription_amount_per_interval(backoffice, org, customer):
    product, price = make_product(org, name="Quarterly", interval="month", interval_count=3, amount=5000)
    make_subscription(org, customer, product, price)
    yearly, yearly_price = make_product(org, name="Yearly", interval="year", amount=20000)
    make_subscription(org, customer, yearly, yearly_price)

    html = html_of(backoffice.get(SUBSCRIPTIONS))

    assert "$50.00 / 3 months" in html and "$200.00 / year" in html


def test_subscription_detail_shows_period_trial_discount_and_orders(backoffice, org, customer):
    product, price = make_product(org)
    discount = Discount.objects.create(
        organization=org,
        name="Spring",
        code="SPRING",
        type="percentage",
        basis_points=2500,
        duration="repeating",
        duration_in_months=3,
    )
    now = clock.now()
    sub = make_subscription(
        org,
        customer,
        product,
        price,
        trial_start=now - timedelta(days=14),
        trial_end=now - timedelta(days=7),
        discount=discount,
        discount_periods_remaining=2,
    )
    first = make_order(org, customer, subtotal=0, subscription=sub, period_start=now - timedelta(days=14))
    second = make_order(
        org,
        customer,
        paid=False,
        subscription=sub,
        billing_reason="subscription_cycle",
        period_start=now - timedelta(days=7),
        period_end=now + timedelta(days=23),
    )
    make_payment(
        org,
        customer,
        second.reference,
        status="failed",
        trigger="cycle",
        decline_message="Your card has expired.",
    )

    html = html_of(backoffice.get(reverse("admin:subscriptions_subscription_change", args=[sub.pk])))

    assert "$20.00 / month" in html
    assert sub.current_period_end.strftime("%Y-%m-%d %H:%M") in html
    assert sub.trial_end.strftime("%Y-%m-%d %H:%M") in html
    assert "SPRING" in html and "2 more billing periods" in html
    assert first.invoice_number in html and f"#{str(second.pk)[:8]}" in html
    assert "Your card has expired." in html
    # newest order first, its payment just below it
    assert (
        html.index(f'data-order="{second.pk}"')
        < html.index("Your card has expired.")
        < html.index(f'data-order="{first.pk}"')
    )


def test_subscription_detail_has_bounded_queries(backoffice, org, customer, django_assert_max_num_queries):
    product, price = make_product(org)
    sub = make_subscription(org, customer, product, price)
    now = clock.now()
    for i in range(10):
        order = make_order(org, customer, subscription=sub, period_start=now - timedelta(days=30 * i))
        make_payment(org, customer, order.reference)

    # 10 orders, 10 payments: no query per row (the timeline below the form adds a fixed few).
    with django_assert_max_num_queries(18):
        html = html_of(backoffice.get(reverse("admin:subscriptions_subscription_change", args=[sub.pk])))
    assert html.count("data-payment=") == 10


# --- customer timeline -------------------------------------------------------------------


@pytest.fixture
def history(org, customer):
    """A customer's story: a checkout, its failed then successful payment, the subscription,
    the paid order, a later renewal that is pending, then a cancellation."""
    product, price = make_product(org)
    t0 = clock.now() - timedelta(days=40)
    checkout = make_checkout(
        org, customer, product, price, status="succeeded", succeeded_at=t0 + timedelta(minutes=3)
    )
    Checkout.objects.filter(pk=checkout.pk).update(created_at=t0)
    failed = make_payment(
        org,
        customer,
        checkout.reference,
        attempt=1,
        status="failed",
        decline_message="Your card was declined.",
        failed_at=t0 + timedelta(minutes=1),
    )
    succeeded = make_payment(
        org, customer, checkout.reference, attempt=2, succeeded_at=t0 + timedelta(minutes=2)
    )
    sub = make_subscription(
        org,
        customer,
        product,
        price,
        checkout=checkout,
        canceled_at=t0 + timedelta(days=35),
        cancel_at_period_end=True,
    )
    Subscription.objects.filter(pk=sub.pk).update(created_at=t0 + timedelta(minutes=3))
    first = make_order(org, customer, checkout=checkout, subscription=sub, paid_at=t0 + timedelta(minutes=3))
    renewal = make_order(
        org,
        customer,
        paid=False,
        subscription=sub,
        billing_reason="subscription_cycle",
        period_start=t0 + timedelta(days=30),
    )
    Order.objects.filter(pk=renewal.pk).update(created_at=t0 + timedelta(days=30))
    return {
        "checkout": checkout,
        "failed": failed,
        "succeeded": succeeded,
        "sub": sub,
        "first": first,
        "renewal": renewal,
    }


def test_customer_timeline_is_merged_newest_first(customer, history):
    events = customer_timeline(customer)

    assert [(e.kind, e.title) for e in events] == [
        ("subscription", "Cancellation of Pro scheduled"),
        ("order", f"Order #{str(history['renewal'].pk)[:8]} pending"),
        ("order", f"Order {history['first'].invoice_number} paid"),
        ("subscription", "Subscribed to Pro"),
        ("checkout", "Checkout for Pro completed"),
        ("payment", "Payment of $20.00 succeeded"),
        ("payment", "Payment of $20.00 failed"),
    ]
    assert [e.when for e in events] == sorted((e.when for e in events), reverse=True)
    failed = events[-1]
    assert failed.tone == "bad" and "Your card was declined." in failed.detail
    assert failed.url == reverse("admin:payments_payment_change", args=[history["failed"].pk])
    assert events[0].detail.startswith(f"active until {history['sub'].current_period_end:%Y-%m-%d}")


def test_customer_page_shows_the_timeline(backoffice, customer, history, django_assert_max_num_queries):
    url = reverse("admin:accounts_customer_change", args=[customer.pk])
    # 12, plus at most one each for the benefits panel and the grants timeline source.
    with django_assert_max_num_queries(14):
        html = html_of(backoffice.get(url))

    assert 'id="timeline"' in html
    timeline = html[html.index('id="timeline"') :]
    positions = [
        timeline.index("Cancellation of Pro scheduled"),
        timeline.index(f"Order {history['first'].invoice_number} paid"),
        timeline.index("Checkout for Pro completed"),
        timeline.index("Your card was declined."),
    ]
    assert positions == sorted(positions)
    assert reverse("admin:orders_order_change", args=[history["first"].pk]) in timeline
    assert history["checkout"].client_secret not in html
    # The form is still there, above the timeline.
    assert html.index('name="_save"') < html.index('id="timeline"')


def test_customer_timeline_queries_do_not_grow_with_history(
    backoffice, org, customer, django_assert_max_num_queries
):
    product, price = make_product(org)
    for i in range(60):
        order = make_order(org, customer, subtotal=1000 + i)
        make_payment(org, customer, order.reference)
        make_checkout(org, customer, product, price, status="succeeded", succeeded_at=clock.now())
        make_subscription(org, customer, product, price, canceled_at=clock.now())

    with django_assert_max_num_queries(
        5
    ):  # one per source: orders, subscriptions, payments, checkouts, grants
        events = customer_timeline(customer)
    assert len(events) == 100

    html = html_of(backoffice.get(reverse("admin:accounts_customer_change", args=[customer.pk])))
    assert html.count('data-kind="') == 100
    assert "The latest 100 events." in html


def test_customer_timeline_shows_only_what_the_user_may_view(customer, history, make_staff):
    nobody = make_staff()
    assert customer_timeline(customer, user=nobody) == []
    support = make_staff("support", email="support@recur.test")
    assert len(customer_timeline(customer, user=support)) == 7


def test_customer_without_history(backoffice, customer):
    html = html_of(backoffice.get(reverse("admin:accounts_customer_change", args=[customer.pk])))
    assert "Nothing yet" in html


# --- dashboard -----------------------------------------------------------------------------


def dashboard_cards(client) -> dict:
    return {card.key: card for card in client.get(reverse("admin:index")).context["cards"]}


def test_dashboard_money_cards(backoffice, org, customer):
    def sub(interval, interval_count, amount, currency="usd", status="active"):
        product, price = make_product(
            org,
            name=f"{interval}x{interval_count} {currency} {status}",
            interval=interval,
            interval_count=interval_count,
            currency=currency,
            amount=amount,
        )
        return make_subscription(org, customer, product, price, status=status)

    sub("month", 1, 2000)  # 2000
    sub("year", 1, 24000)  # 24000 / 12 = 2000
    sub("month", 3, 6000)  # 6000 / 3 = 2000
    sub("week", 1, 700)  # 700 * 30.4375 / 7 = 3043.75
    sub("day", 1, 100)  # 100 * 30.4375 = 3043.75
    sub("week", 2, 1000)  # 1000 * 30.4375 / 14 = 2174.107…
    sub("year", 2, 1000, currency="eur")  # 1000 / 24 = 41.67
    sub("month", 1, 500, currency="eur")  # 500
    sub("month", 1, 9900, status="trialing")  # not in MRR, but live
    sub("month", 1, 9900, status="past_due")  # not in MRR, but live
    sub("month", 1, 9900, status="canceled")  # neither

    now = clock.now()
    make_order(org, customer, subtotal=2000, paid_at=now - timedelta(days=1))
    make_order(org, customer, subtotal=2500, tax=500, paid_at=now - timedelta(days=29))
    make_order(org, customer, subtotal=1000, tax=200, tax_inclusive=True, currency="eur", paid_at=now)
    make_order(org, customer, subtotal=1000, status="partially_refunded", refunded_amount=400, paid_at=now)
    make_order(org, customer, subtotal=8000, paid_at=now - timedelta(days=31))  # too old
    make_order(org, customer, subtotal=7000, paid=False)  # not paid

    cards = dashboard_cards(backoffice)

    # 2000 + 2000 + 2000 + 3043.75 + 3043.75 + 2174.107… = 14261.607… -> 14262
    assert cards["mrr"].value == "$142.62"
    assert cards["mrr"].hint == "8 active subscriptions · also €5.42"  # 41.67 + 500 -> 542
    assert not cards["mrr"].placeholder
    assert cards["active_subscriptions"].value == "10"
    assert cards["active_subscriptions"].hint == "8 active · 1 trialing · 1 past due"
    # 2000 + 3000 + 1000 (refunds are not netted here)
    assert cards["revenue_30d"].value == "$60.00"
    assert cards["revenue_30d"].hint == "4 paid orders · also €10.00"

    for key in ("mrr", "active_subscriptions", "revenue_30d"):
        response = backoffice.get(cards[key].url)
        assert response.status_code == 200, key
    assert len(results(backoffice, cards["active_subscriptions"].url)) == 10
    assert len(backoffice.get(cards["revenue_30d"].url).context["cl"].result_list) == 4


def test_dashboard_money_cards_without_data(backoffice, django_assert_max_num_queries):
    cards = dashboard_cards(backoffice)

    assert cards["mrr"].value == "0" and cards["mrr"].hint == "0 active subscriptions"
    assert cards["active_subscriptions"].value == "0"
    assert cards["revenue_30d"].value == "0"


def test_support_sees_the_money_cards_and_a_role_less_user_does_not(client, make_staff):
    client.force_login(make_staff("support"))
    assert {"mrr", "active_subscriptions", "revenue_30d"} <= set(dashboard_cards(client))
    client.force_login(make_staff(email="nobody@recur.test"))
    assert not {"mrr", "active_subscriptions", "revenue_30d"} & set(dashboard_cards(client))


# --- secrets and roles -----------------------------------------------------------------------


def test_client_secret_never_appears(backoffice, paid_order, org, customer):
    checkout = paid_order.checkout
    payment = Payment.objects.filter(reference=checkout.reference).last()
    Payment.objects.filter(pk=payment.pk).update(client_secret="pi_123_secret_abc")
    secrets = [checkout.client_secret, "pi_123_secret_abc"]
    pages = [
        CHECKOUTS,
        reverse("admin:checkout_checkout_change", args=[checkout.pk]),
        reverse("admin:checkout_checkout_history", args=[checkout.pk]),
        ORDERS,
        reverse("admin:orders_order_change", args=[paid_order.pk]),
        SUBSCRIPTIONS,
        reverse("admin:subscriptions_subscription_change", args=[paid_order.subscription_id]),
        reverse("admin:payments_payment_changelist"),
        reverse("admin:payments_payment_change", args=[payment.pk]),
        reverse("admin:accounts_customer_change", args=[customer.pk]),
        reverse("admin:index"),
    ]
    for page in pages:
        html = html_of(backoffice.get(page))
        for secret in secrets:
            assert secret not in html, page


def test_support_can_view_but_not_change(client, make_staff, paid_order):
    client.force_login(make_staff("support"))
    pages = [
        (CHECKOUTS, reverse("admin:checkout_checkout_change", args=[paid_order.checkout_id])),
        (ORDERS, reverse("admin:orders_order_change", args=[paid_order.pk])),
        (
            SUBSCRIPTIONS,
            reverse("admin:subscriptions_subscription_change", args=[paid_order.subscription_id]),
        ),
    ]
    for changelist, change in pages:
        assert client.get(changelist).status_code == 200
        html = html_of(client.get(change))
        assert 'name="_save"' not in html
        assert client.post(change, {}).status_code == 403
        assert client.get(changelist + "add/").status_code == 403
        assert client.get(change.replace("/change/", "/delete/")).status_code == 403
    assert Order.objects.filter(pk=paid_order.pk).exists()


def test_staff_without_a_role_sees_no_billing_pages(client, make_staff, paid_order):
    client.force_login(make_staff())
    for url in (CHECKOUTS, ORDERS, SUBSCRIPTIONS, reverse("admin:orders_order_change", args=[paid_order.pk])):
        assert client.get(url).status_code == 403


def test_support_can_download_an_invoice(client, make_staff, paid_order):
    pytest.importorskip("billing.orders.invoice_pdf")
    client.force_login(make_staff("support"))

    response = client.get(reverse("admin:orders_order_invoice_pdf", args=[paid_order.pk]))

    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
