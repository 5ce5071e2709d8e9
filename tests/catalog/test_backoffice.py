from datetime import timedelta

import pytest
from django.urls import reverse

from billing.catalog import services
from billing.catalog.models import Discount, DiscountRedemption, Price, Product
from core import clock
from core.models import AuditEntry

pytestmark = pytest.mark.django_db

PRODUCT_FIELDS = {
    "description": "",
    "recurring_interval": "",
    "recurring_interval_count": "1",
    "metadata": "{}",
}
PRICE_FIELDS = {
    f"price_{name}": ""
    for name in (
        "amount",
        "minimum_amount",
        "maximum_amount",
        "preset_amount",
        "seat_tiers",
        "seat_tier_mode",
        "minimum_seats",
        "maximum_seats",
    )
}


@pytest.fixture
def catalog(make_org):
    """Three merchants, each with products of several prices and discounts with uses."""
    from billing.checkout.models import Checkout

    orgs = [make_org(f"Merchant {i}") for i in range(3)]
    products, discounts = [], []
    for i in range(12):
        org = orgs[i % 3]
        product = services.product_create(
            organization=org,
            name=f"Product {i}",
            recurring_interval="month" if i % 2 else None,
            prices=[
                {"currency": "usd", "type": "fixed", "amount": 1000 + i},
                {"currency": "eur", "type": "custom", "minimum_amount": 0},
            ],
        )
        products.append(product)
        discount = services.discount_create(
            organization=org,
            name=f"Discount {i}",
            code=f"CODE-{i}",
            type="fixed" if i % 2 else "percentage",
            basis_points=None if i % 2 else 2500,
            amounts={"usd": 500} if i % 2 else None,
            max_redemptions=10,
            product_ids=[product.pk],
        )
        discounts.append(discount)
        for n in range(2):
            checkout = Checkout.objects.create(
                organization=org,
                product=product,
                price=Price.objects.filter(product=product).first(),
                currency="usd",
                expires_at=clock.now() + timedelta(days=1),
            )
            services.discount_reserve(discount=discount, checkout=checkout, customer_email=f"b{n}@x.io")
    return products, discounts


def test_product_list_has_bounded_queries(backoffice, catalog, django_assert_max_num_queries):
    url = reverse("admin:catalog_product_changelist")
    with django_assert_max_num_queries(12):
        response = backoffice.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Product 11" in html and "every 1 month" in html and "one-time" in html
    assert "$10.11" in html and "pay what you want (eur) from €0.00" in html


def test_product_list_filters_and_search(backoffice, catalog):
    products, _ = catalog
    url = reverse("admin:catalog_product_changelist")

    def found(**params):
        return {p.name for p in backoffice.get(url, params).context["cl"].result_list}

    assert len(found(kind="recurring")) == 6
    assert found(q="Product 7") == {"Product 7"}
    assert found(q=str(products[3].pk)) == {"Product 3"}
    services.product_archive(product=products[0])
    assert found(is_archived__exact="1") == {"Product 0"}


def test_discount_list_has_bounded_queries(backoffice, catalog, django_assert_max_num_queries):
    url = reverse("admin:catalog_discount_changelist")
    with django_assert_max_num_queries(12):
        response = backoffice.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert "CODE-11" in html and "25%" in html and "usd 5.00" in html and "2 / 10" in html


def test_discount_list_filters(backoffice, catalog):
    products, discounts = catalog
    url = reverse("admin:catalog_discount_changelist")

    def found(**params):
        response = backoffice.get(url, params)
        assert response.status_code == 200
        return {d.code for d in response.context["cl"].result_list}

    assert found(q="code-3") == {"CODE-3"}
    assert found(type__exact="percentage") == {f"CODE-{i}" for i in range(0, 12, 2)}
    services.discount_archive(discount=discounts[5])
    assert found(status="archived") == {"CODE-5"}
    assert "CODE-5" not in found(status="active")
    assert found(products__id__exact=str(products[4].pk)) == {"CODE-4"}


def test_product_detail_shows_prices_and_actions(backoffice, product):
    services.product_update(
        product=product, prices=[{"id": Price.objects.get(product=product).pk, "amount": 1500}]
    )
    html = backoffice.get(reverse("admin:catalog_product_change", args=[product.pk])).content.decode()
    assert "$10.00" in html and "$15.00" in html and "archived" in html
    for action in ("set_price", "archive", "delete_product"):
        assert reverse(f"admin:catalog_product_{action}", args=[product.pk]) in html


def test_product_add_goes_through_the_service(backoffice, org, operator):
    url = reverse("admin:catalog_product_add")
    assert backoffice.get(url).status_code == 200
    data = {
        "organization": org.pk,
        "name": "Course",
        **PRODUCT_FIELDS,
        **PRICE_FIELDS,
        "price_currency": "usd",
        "price_type": "fixed",
        "price_amount": "49.99",
    }

    response = backoffice.post(url, data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    product = Product.objects.get(name="Course")
    assert Price.objects.get(product=product).amount == 4999
    assert AuditEntry.objects.get(action="product.create").actor == operator


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"price_amount": "0.10"}, "price_amount"),  # below Stripe's minimum charge
        ({"price_amount": "1.999"}, "price_amount"),  # usd has two decimals
        ({"price_currency": "zzz"}, "price_currency"),
        ({"price_type": "custom", "price_amount": ""}, "price_minimum_amount"),
        ({"recurring_interval": "month", "recurring_interval_count": "40"}, "recurring_interval_count"),
        (
            {"price_type": "seat_based", "price_amount": "", "price_seat_tier_mode": "volume"},
            "price_seat_tiers",
        ),
    ],
)
def test_product_add_shows_service_errors_on_the_form(backoffice, org, changes, field):
    data = {
        "organization": org.pk,
        "name": "Course",
        **PRODUCT_FIELDS,
        **PRICE_FIELDS,
        "price_currency": "usd",
        "price_type": "fixed",
        "price_amount": "49.99",
        **changes,
    }
    response = backoffice.post(reverse("admin:catalog_product_add"), data)
    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert not Product.objects.exists()


def test_product_change_of_a_sold_product_interval_is_a_form_error(backoffice, product, make_subscription):
    make_subscription(product)
    url = reverse("admin:catalog_product_change", args=[product.pk])
    response = backoffice.post(url, {**PRODUCT_FIELDS, "name": "Pro", "recurring_interval": "month"})
    assert response.status_code == 200
    assert "recurring_interval" in response.context["adminform"].form.errors

    response = backoffice.post(url, {**PRODUCT_FIELDS, "name": "Pro renamed"})
    assert response.status_code == 302, response.context["adminform"].form.errors
    product.refresh_from_db()
    assert product.name == "Pro renamed"
    assert AuditEntry.objects.get(action="product.update").data["after"] == {"name": "Pro renamed"}


def test_set_and_remove_price_actions(backoffice, product, htmx):
    set_price = reverse("admin:catalog_product_set_price", args=[product.pk])
    assert backoffice.get(set_price, **htmx).status_code == 200
    fields = {"amount": "", "minimum_amount": "", "maximum_amount": "", "preset_amount": "", "seat_tiers": ""}

    response = backoffice.post(
        set_price, {**fields, "currency": "eur", "type": "fixed", "amount": "9"}, **htmx
    )
    assert response.status_code == 200 and "HX-Redirect" in response.headers
    response = backoffice.post(
        set_price, {**fields, "currency": "usd", "type": "fixed", "amount": "12.00"}, **htmx
    )
    assert "HX-Redirect" in response.headers
    active = {p.currency: p.amount for p in Price.objects.filter(product=product, is_archived=False)}
    assert active == {"eur": 900, "usd": 1200}

    refused = backoffice.post(
        set_price, {**fields, "currency": "usd", "type": "fixed", "amount": "0.20"}, **htmx
    )
    assert "HX-Redirect" not in refused.headers
    assert "amount" in refused.context["form"].errors

    remove = reverse("admin:catalog_product_remove_price", args=[product.pk])
    eur = Price.objects.get(product=product, currency="eur", is_archived=False)
    response = backoffice.post(remove, {"price": str(eur.pk)}, **htmx)
    assert "HX-Redirect" in response.headers
    assert [p.currency for p in Price.objects.filter(product=product, is_archived=False)] == ["usd"]


def test_archive_and_delete_actions(backoffice, product, make_product, make_checkout, htmx):
    archive = reverse("admin:catalog_product_archive", args=[product.pk])
    assert "HX-Redirect" in backoffice.post(archive, {}, **htmx).headers
    product.refresh_from_db()
    assert product.is_archived
    unarchive = reverse("admin:catalog_product_unarchive", args=[product.pk])
    assert "HX-Redirect" in backoffice.post(unarchive, {}, **htmx).headers

    sold = make_product(name="Sold")
    make_checkout(sold)
    response = backoffice.post(reverse("admin:catalog_product_delete_product", args=[sold.pk]), {}, **htmx)
    assert "HX-Redirect" not in response.headers
    assert "archive it instead" in response.content.decode()

    response = backoffice.post(reverse("admin:catalog_product_delete_product", args=[product.pk]), {}, **htmx)
    assert response.headers["HX-Redirect"] == reverse("admin:catalog_product_changelist")
    assert not Product.objects.filter(pk=product.pk).exists()


DISCOUNT_FIELDS = {
    "code": "",
    "basis_points": "",
    "amounts": "{}",
    "duration": "once",
    "duration_in_months": "",
    "starts_at": "",
    "ends_at": "",
    "max_redemptions": "",
    "max_redemptions_per_customer": "",
    "metadata": "{}",
}


def test_discount_add_goes_through_the_service(backoffice, org, product, operator):
    url = reverse("admin:catalog_discount_add")
    assert backoffice.get(url).status_code == 200
    data = {
        **DISCOUNT_FIELDS,
        "organization": org.pk,
        "name": "Goodwill",
        "code": "SORRY-10",
        "type": "fixed",
        "amounts": '{"usd": 1000}',
        "max_redemptions": "1",
        "products": [product.pk],
    }

    response = backoffice.post(url, data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    discount = Discount.objects.get(code="SORRY-10")
    assert discount.amounts == {"usd": 1000}
    assert list(discount.products.all()) == [product]
    assert AuditEntry.objects.get(action="discount.create").actor == operator


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"code": "DUP"}, "code"),  # taken, in another case
        ({"code": "x"}, "code"),
        ({"basis_points": "20000"}, "basis_points"),
        ({"duration": "repeating"}, "duration_in_months"),
        ({"type": "fixed", "basis_points": ""}, "amounts"),
        ({"amounts": '{"usd": 500}'}, "amounts"),
        (
            {
                "starts_at_0": "2100-01-02",
                "starts_at_1": "00:00",
                "ends_at_0": "2100-01-01",
                "ends_at_1": "00:00",
            },
            "ends_at",
        ),
    ],
)
def test_discount_add_shows_service_errors_on_the_form(backoffice, org, make_discount, changes, field):
    make_discount(code="dup")
    data = {
        **DISCOUNT_FIELDS,
        "organization": org.pk,
        "name": "Bad",
        "type": "percentage",
        "basis_points": "1000",
        **changes,
    }
    response = backoffice.post(reverse("admin:catalog_discount_add"), data)
    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors, response.context["adminform"].form.errors
    assert Discount.objects.count() == 1


def test_discount_change_and_foreign_product(backoffice, make_discount, make_org, make_product):
    discount = make_discount(code="EDIT")
    foreign = make_product(make_org("Other"), name="Theirs")
    url = reverse("admin:catalog_discount_change", args=[discount.pk])
    assert backoffice.get(url).status_code == 200
    fields = {
        "name": "Edited",
        "code": "EDIT",
        "starts_at_0": "",
        "starts_at_1": "",
        "ends_at_0": "",
        "ends_at_1": "",
        "max_redemptions": "5",
        "max_redemptions_per_customer": "",
        "metadata": "{}",
    }

    response = backoffice.post(url, {**fields, "products": [foreign.pk]})
    assert response.status_code == 200
    assert "products" in response.context["adminform"].form.errors

    response = backoffice.post(url, fields)
    assert response.status_code == 302, response.context["adminform"].form.errors
    discount.refresh_from_db()
    assert (discount.name, discount.max_redemptions) == ("Edited", 5)


def test_discount_detail_shows_redemptions_and_archive(
    backoffice, make_discount, product, make_checkout, htmx
):
    discount = make_discount(code="SHOWN", max_redemptions=3)
    services.discount_reserve(
        discount=discount, checkout=make_checkout(product), customer_email="ann@example.com"
    )
    html = backoffice.get(reverse("admin:catalog_discount_change", args=[discount.pk])).content.decode()
    assert "ann@example.com" in html and "1 / 3" in html and "reserved" in html

    response = backoffice.post(reverse("admin:catalog_discount_archive", args=[discount.pk]), {}, **htmx)
    assert "HX-Redirect" in response.headers
    discount.refresh_from_db()
    assert discount.is_archived
    response = backoffice.post(
        reverse("admin:catalog_discount_delete_discount", args=[discount.pk]), {}, **htmx
    )
    assert "HX-Redirect" not in response.headers
    assert DiscountRedemption.objects.count() == 1


def test_roles(make_staff, client):
    from core.roles import roles_install

    roles_install()
    support = make_staff("support")
    assert support.has_perm("catalog.view_product") and support.has_perm("catalog.change_discount")
    assert not support.has_perm("catalog.change_product")
    finance = make_staff("finance", email="finance@recur.test")
    assert finance.has_perm("catalog.change_product") and not finance.has_perm("catalog.delete_product")
    client.force_login(support)
    assert client.get(reverse("admin:catalog_product_changelist")).status_code == 200
