import pytest

from billing.catalog import selectors, services
from billing.catalog.models import Price, Product
from core.errors import Conflict, InvalidInput
from core.models import AuditEntry

pytestmark = pytest.mark.django_db

SEATS = {
    "currency": "eur",
    "type": "seat_based",
    "seat_tier_mode": "graduated",
    "seat_tiers": [{"up_to": 10, "unit_amount": 800}, {"up_to": None, "unit_amount": 600}],
    "minimum_seats": 2,
    "maximum_seats": 100,
}


def refused(field: str, code: str, error=InvalidInput):
    class Check:
        def __enter__(self):
            self.ctx = pytest.raises(error)
            self.caught = self.ctx.__enter__()
            return self.caught

        def __exit__(self, *exc):
            handled = self.ctx.__exit__(*exc)
            assert (self.caught.value.field, self.caught.value.code) == (field, code), (
                self.caught.value.detail
            )
            return handled

    return Check()


def test_create_with_prices_of_every_type(org):
    product = services.product_create(
        organization=org,
        name="  Team plan ",
        recurring_interval="month",
        recurring_interval_count=3,
        metadata={"tier": "team"},
        prices=[
            {"currency": "usd", "type": "fixed", "amount": 4900},
            {
                "currency": "gbp",
                "type": "custom",
                "minimum_amount": 0,
                "maximum_amount": 5000,
                "preset_amount": 900,
            },
            {"currency": "jpy", "type": "free"},
            SEATS,
        ],
    )

    product.refresh_from_db()
    assert (product.name, product.recurring_interval, product.recurring_interval_count) == (
        "Team plan",
        "month",
        3,
    )
    prices = {p.currency: p for p in Price.objects.filter(product=product)}
    assert set(prices) == {"usd", "gbp", "jpy", "eur"}
    assert prices["usd"].amount == 4900
    assert (prices["gbp"].minimum_amount, prices["gbp"].preset_amount) == (0, 900)
    assert prices["eur"].seat_tiers == [
        {"up_to": 10, "unit_amount": 800, "flat_amount": 0},
        {"up_to": None, "unit_amount": 600, "flat_amount": 0},
    ]
    assert (prices["eur"].minimum_seats, prices["eur"].maximum_seats) == (2, 100)
    assert all(p.organization_id == org.pk for p in prices.values())


def test_create_audits_only_operators(org, operator):
    services.product_create(organization=org, name="A", prices=[{"currency": "usd", "type": "free"}])
    assert not AuditEntry.objects.exists()
    services.product_create(
        organization=org, name="B", prices=[{"currency": "usd", "type": "free"}], actor=operator
    )
    assert AuditEntry.objects.get().action == "product.create"


@pytest.mark.parametrize(
    ("prices", "field", "code"),
    [
        ([], "prices", "required"),
        ([{"currency": "usd", "type": "fixed", "amount": 0}], "prices[0].amount", "out_of_range"),
        ([{"currency": "usd", "type": "fixed"}], "prices[0].amount", "required"),
        ([{"currency": "usd", "type": "fixed", "amount": 10}], "prices[0].amount", "below_minimum_charge"),
        ([{"currency": "usd", "type": "fixed", "amount": "10"}], "prices[0].amount", "invalid"),
        ([{"currency": "usd", "type": "fixed", "amount": True}], "prices[0].amount", "invalid"),
        ([{"currency": "xxx1", "type": "free"}], "prices[0].currency", "unsupported_currency"),
        ([{"currency": "zzz", "type": "free"}], "prices[0].currency", "unsupported_currency"),
        ([{"currency": "usd", "type": "metered"}], "prices[0].type", "invalid_choice"),
        ([{"currency": "usd", "type": "free", "amount": 500}], "prices[0].amount", "not_allowed"),
        ([{"currency": "usd", "type": "free", "colour": "red"}], "prices[0].colour", "unknown_field"),
        ([{"currency": "usd", "type": "custom"}], "prices[0].minimum_amount", "required"),
        (
            [{"currency": "usd", "type": "custom", "minimum_amount": 1000, "maximum_amount": 500}],
            "prices[0].maximum_amount",
            "maximum_below_minimum",
        ),
        (
            [{"currency": "usd", "type": "custom", "minimum_amount": 10}],
            "prices[0].minimum_amount",
            "below_minimum_charge",
        ),
        (
            [
                {
                    "currency": "usd",
                    "type": "custom",
                    "minimum_amount": 500,
                    "maximum_amount": 900,
                    "preset_amount": 1000,
                }
            ],
            "prices[0].preset_amount",
            "amount_out_of_range",
        ),
        (
            [{"currency": "usd", "type": "fixed", "amount": 500}, {"currency": "USD", "type": "free"}],
            "prices[1].currency",
            "duplicate_currency",
        ),
        ([{**SEATS, "seat_tiers": []}], "prices[0].seat_tiers", "required"),
        ([{**SEATS, "seat_tier_mode": "stairs"}], "prices[0].seat_tier_mode", "invalid_choice"),
        (
            [{**SEATS, "seat_tiers": [{"up_to": 10, "unit_amount": 800}, {"up_to": 20, "unit_amount": 600}]}],
            "prices[0].seat_tiers[1].up_to",
            "last_tier_not_open",
        ),
        (
            [
                {
                    **SEATS,
                    "seat_tiers": [
                        {"up_to": 10, "unit_amount": 800},
                        {"up_to": 5, "unit_amount": 700},
                        {"up_to": None, "unit_amount": 600},
                    ],
                }
            ],
            "prices[0].seat_tiers[1].up_to",
            "tiers_not_ascending",
        ),
        (
            [{**SEATS, "seat_tiers": [{"up_to": None, "unit_amount": -1}]}],
            "prices[0].seat_tiers[0].unit_amount",
            "out_of_range",
        ),
        ([{**SEATS, "minimum_seats": 0}], "prices[0].minimum_seats", "out_of_range"),
        (
            [{**SEATS, "minimum_seats": 5, "maximum_seats": 4}],
            "prices[0].maximum_seats",
            "maximum_below_minimum",
        ),
    ],
)
def test_create_refuses_bad_prices(org, prices, field, code):
    with refused(field, code):
        services.product_create(organization=org, name="Bad", prices=prices)
    assert not Product.objects.exists()
    assert not Price.objects.exists()


@pytest.mark.parametrize(
    ("fields", "field", "code"),
    [
        ({"name": "  "}, "name", "required"),
        ({"name": "x" * 201}, "name", "max_length"),
        ({"recurring_interval": "fortnight"}, "recurring_interval", "invalid_choice"),
        (
            {"recurring_interval": "month", "recurring_interval_count": 37},
            "recurring_interval_count",
            "out_of_range",
        ),
        (
            {"recurring_interval": "day", "recurring_interval_count": 0},
            "recurring_interval_count",
            "out_of_range",
        ),
        ({"recurring_interval_count": 2}, "recurring_interval_count", "not_allowed"),
        ({"metadata": {"k": 1}}, "metadata", "invalid_value"),
    ],
)
def test_create_refuses_bad_product_fields(org, fields, field, code):
    fields = {"name": "Ok", **fields}
    with refused(field, code):
        services.product_create(organization=org, prices=[{"currency": "usd", "type": "free"}], **fields)


def test_update_name_and_metadata(product):
    updated = services.product_update(product=product, name="Renamed", metadata={"a": "b"})
    assert (updated.name, updated.metadata) == ("Renamed", {"a": "b"})
    with refused("colour", "unknown_field"):
        services.product_update(product=product, colour="red")


def test_changing_a_price_archives_it_and_creates_a_new_one(product):
    old = Price.objects.get(product=product)

    services.product_update(product=product, prices=[{"id": old.pk, "amount": 1500}])

    old.refresh_from_db()
    assert old.is_archived and old.amount == 1000  # never edited in place
    new = Price.objects.get(product=product, is_archived=False)
    assert (new.currency, new.type, new.amount) == ("usd", "fixed", 1500)


def test_prices_listed_by_id_alone_or_unchanged_are_kept(product):
    usd = Price.objects.get(product=product)
    services.product_update(
        product=product, prices=[{"id": usd.pk}, {"currency": "eur", "type": "fixed", "amount": 900}]
    )
    services.product_update(
        product=product,
        prices=[
            {"id": usd.pk, "currency": "usd", "type": "fixed", "amount": 1000},
            {"id": Price.objects.get(product=product, currency="eur").pk},
        ],
    )

    usd.refresh_from_db()
    assert not usd.is_archived
    assert Price.objects.filter(product=product).count() == 2
    fresh = Product.objects.get(pk=product.pk)
    assert {p.currency for p in selectors.product_active_prices(fresh)} == {"usd", "eur"}


def test_prices_left_out_are_archived_and_the_type_can_change(product):
    usd = Price.objects.get(product=product)
    services.product_update(product=product, prices=[{"id": usd.pk, "type": "custom", "minimum_amount": 500}])
    active = Price.objects.get(product=product, is_archived=False)
    assert (active.type, active.amount, active.minimum_amount) == ("custom", None, 500)

    services.product_update(product=product, prices=[{"currency": "gbp", "type": "free"}])
    assert [p.currency for p in Price.objects.filter(product=product, is_archived=False)] == ["gbp"]
    assert Price.objects.filter(product=product, is_archived=True).count() == 2


def test_one_active_price_per_currency_on_update(product):
    usd = Price.objects.get(product=product)
    with refused("prices[1].currency", "duplicate_currency"):
        services.product_update(product=product, prices=[{"id": usd.pk}, {"currency": "usd", "type": "free"}])
    with refused("prices", "required"):
        services.product_update(product=product, prices=[])
    with refused("prices[0].id", "unknown_price"):
        services.product_update(product=product, prices=[{"id": "00000000-0000-0000-0000-000000000000"}])
    with refused("prices[1].id", "duplicate_price"):
        services.product_update(product=product, prices=[{"id": usd.pk}, {"id": usd.pk}])
    assert Price.objects.get(product=product) == usd  # nothing changed


def test_an_archived_price_cannot_be_kept(product):
    usd = Price.objects.get(product=product)
    services.product_update(product=product, prices=[{"id": usd.pk, "amount": 2000}])
    with refused("prices[0].id", "unknown_price"):
        services.product_update(product=product, prices=[{"id": usd.pk}])


def test_another_products_price_cannot_be_kept(product, make_product):
    other = make_product(name="Other")
    with refused("prices[0].id", "unknown_price"):
        services.product_update(product=product, prices=[{"id": Price.objects.get(product=other).pk}])


def test_interval_changes_until_sold(product, make_subscription):
    services.product_update(product=product, recurring_interval="year")
    product.refresh_from_db()
    assert (product.recurring_interval, product.recurring_interval_count) == ("year", 1)

    make_subscription(product)

    with refused("recurring_interval", "product_sold", error=Conflict):
        services.product_update(product=product, recurring_interval="month")
    with refused("recurring_interval_count", "product_sold", error=Conflict):
        services.product_update(product=product, recurring_interval_count=2)
    # Other changes still work, and a sold price is replaced, never edited.
    services.product_update(product=product, name="Still selling", recurring_interval="year")
    sold = Price.objects.get(product=product)
    services.product_update(product=product, prices=[{"id": sold.pk, "amount": 1200}])
    sold.refresh_from_db()
    assert sold.is_archived and sold.amount == 1000


@pytest.mark.parametrize("via", ["checkout", "subscription", "order_item"])
def test_sold_means_any_checkout_order_or_subscription(
    product, via, make_checkout, make_subscription, customer
):
    assert not selectors.product_is_sold(product)
    price = Price.objects.get(product=product)
    if via == "checkout":
        make_checkout(product)
    elif via == "subscription":
        make_subscription(product)
    else:
        from billing.orders.models import Order, OrderItem

        order = Order.objects.create(
            organization=product.organization,
            customer=customer,
            billing_reason="purchase",
            currency="usd",
            subtotal=1000,
            net=1000,
            total=1000,
            due=1000,
        )
        OrderItem.objects.create(order=order, label="Pro", amount=1000, price=price)
    assert selectors.product_is_sold(product)


def test_archive_and_unarchive(product, operator):
    assert services.product_archive(product=product, actor=operator).is_archived
    assert services.product_archive(product=product).is_archived  # idempotent
    assert not services.product_unarchive(product=product, actor=operator).is_archived
    assert list(AuditEntry.objects.order_by("id").values_list("action", flat=True)) == [
        "product.archive",
        "product.unarchive",
    ]


def test_delete_only_if_never_sold(product, make_product, make_checkout):
    services.product_delete(product=product)
    assert not Product.objects.filter(pk=product.pk).exists()
    assert not Price.objects.filter(product_id=product.pk).exists()

    sold = make_product(name="Sold")
    make_checkout(sold)
    with refused(None, "product_sold", error=Conflict):
        services.product_delete(product=sold)
    assert Product.objects.filter(pk=sold.pk).exists()


def test_delete_refused_while_a_discount_is_restricted_to_it(product, make_discount):
    make_discount(product_ids=[product.pk])
    with refused(None, "product_has_discounts", error=Conflict):
        services.product_delete(product=product)
