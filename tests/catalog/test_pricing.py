"""The pricing math: pure functions over unsaved rows."""

import pytest

from billing.catalog.models import Discount, Price
from billing.catalog.pricing import discount_amount, price_subtotal
from core.errors import InvalidInput

TIERS = [
    {"up_to": 10, "unit_amount": 800, "flat_amount": 0},
    {"up_to": 50, "unit_amount": 600, "flat_amount": 1000},
    {"up_to": None, "unit_amount": 400, "flat_amount": 2000},
]


def seat_price(mode: str, **fields) -> Price:
    return Price(currency="usd", type="seat_based", seat_tiers=TIERS, seat_tier_mode=mode, **fields)


def custom_price(**fields) -> Price:
    fields.setdefault("minimum_amount", 0)
    fields.setdefault("currency", "usd")
    return Price(type="custom", **fields)


def refused(field: str, code: str, **kwargs) -> None:
    with pytest.raises(InvalidInput) as caught:
        price_subtotal(**kwargs)
    assert (caught.value.field, caught.value.code) == (field, code)


def test_fixed_and_free():
    assert price_subtotal(price=Price(currency="usd", type="fixed", amount=1999)) == 1999
    assert price_subtotal(price=Price(currency="usd", type="free")) == 0
    # seats and custom amounts mean nothing to them
    assert (
        price_subtotal(price=Price(currency="jpy", type="fixed", amount=500), seats=3, custom_amount=9) == 500
    )


def test_custom_uses_the_amount_or_the_preset():
    price = custom_price(minimum_amount=0, maximum_amount=10_000, preset_amount=500)
    assert price_subtotal(price=price) == 500
    assert price_subtotal(price=price, custom_amount=2500) == 2500
    assert price_subtotal(price=price, custom_amount=0) == 0  # minimum 0: free is allowed
    assert price_subtotal(price=price, custom_amount=10_000) == 10_000
    assert price_subtotal(price=custom_price(), custom_amount=10**9) == 10**9  # no maximum


def test_custom_bounds():
    price = custom_price(minimum_amount=500, maximum_amount=10_000)
    refused("amount", "amount_out_of_range", price=price, custom_amount=499)
    refused("amount", "amount_out_of_range", price=price, custom_amount=10_001)
    refused("amount", "amount_out_of_range", price=price, custom_amount=-1)
    refused("amount", "amount_required", price=price)


def test_custom_amount_must_be_chargeable():
    refused("amount", "below_minimum_charge", price=custom_price(), custom_amount=49)  # usd minimum is 0.50
    assert price_subtotal(price=custom_price(), custom_amount=50) == 50
    # isk is charged in whole krónur: multiples of 100 minor units
    refused("amount", "amount_not_chargeable", price=custom_price(currency="isk"), custom_amount=150)
    assert price_subtotal(price=custom_price(currency="isk"), custom_amount=200) == 200


@pytest.mark.parametrize(
    ("seats", "expected"),
    [
        (1, 800),
        (5, 4_000),  # 5 x 8.00
        (10, 8_000),  # the top of the first tier
        (11, 7_600),  # 11 x 6.00 + 10.00 flat
        (50, 31_000),  # 50 x 6.00 + 10.00
        (51, 22_400),  # 51 x 4.00 + 20.00
    ],
)
def test_volume_tiers(seats, expected):
    assert price_subtotal(price=seat_price("volume"), seats=seats) == expected


@pytest.mark.parametrize(
    ("seats", "expected"),
    [
        (1, 800),
        (10, 8_000),  # 10 x 8.00
        (11, 9_600),  # 8000 + 1 x 6.00 + 10.00 flat
        (50, 33_000),  # 8000 + 40 x 6.00 + 10.00
        (51, 35_400),  # 33000 + 1 x 4.00 + 20.00
        (60, 39_000),  # 33000 + 10 x 4.00 + 20.00
    ],
)
def test_graduated_tiers(seats, expected):
    assert price_subtotal(price=seat_price("graduated"), seats=seats) == expected


def test_flat_amount_is_optional_in_tiers():
    price = Price(
        currency="usd",
        type="seat_based",
        seat_tier_mode="graduated",
        seat_tiers=[{"up_to": 2, "unit_amount": 1000}, {"up_to": None, "unit_amount": 500}],
    )
    assert price_subtotal(price=price, seats=3) == 2500


def test_seat_bounds():
    price = seat_price("volume", minimum_seats=2, maximum_seats=20)
    assert price_subtotal(price=price) == 1_600  # defaults to the minimum
    assert price_subtotal(price=price, seats=20) == 20 * 600 + 1000
    refused("seats", "seats_out_of_range", price=price, seats=1)
    refused("seats", "seats_out_of_range", price=price, seats=21)
    refused("seats", "seats_out_of_range", price=seat_price("volume"), seats=0)


def test_seat_total_beyond_what_can_be_charged():
    price = Price(
        currency="usd",
        type="seat_based",
        seat_tier_mode="volume",
        seat_tiers=[{"up_to": None, "unit_amount": 999_999_999_999}],
    )
    refused("seats", "amount_too_large", price=price, seats=10_000_000)


def percentage(bps: int) -> Discount:
    return Discount(type="percentage", basis_points=bps)


@pytest.mark.parametrize(
    ("subtotal", "bps", "expected"),
    [
        (1999, 2500, 500),  # 499.75 -> 500
        (10, 2500, 3),  # 2.5 -> 3: half-up
        (1, 5000, 1),  # 0.5 -> 1
        (3, 3333, 1),  # 0.9999 -> 1
        (1000, 1, 0),  # 0.1 -> 0
        (1000, 10_000, 1000),  # 100%
        (0, 2500, 0),
    ],
)
def test_percentage_discount_rounds_half_up(subtotal, bps, expected):
    assert discount_amount(discount=percentage(bps), subtotal=subtotal, currency="usd") == expected


def test_fixed_discount_is_capped_at_the_subtotal():
    discount = Discount(type="fixed", amounts={"usd": 500, "eur": 450})
    assert discount_amount(discount=discount, subtotal=2000, currency="usd") == 500
    assert discount_amount(discount=discount, subtotal=2000, currency="eur") == 450
    assert discount_amount(discount=discount, subtotal=300, currency="usd") == 300
    assert discount_amount(discount=discount, subtotal=0, currency="usd") == 0


def test_fixed_discount_without_the_currency_is_refused():
    discount = Discount(type="fixed", amounts={"usd": 500})
    for subtotal in (2000, 0):
        with pytest.raises(InvalidInput) as caught:
            discount_amount(discount=discount, subtotal=subtotal, currency="gbp")
        assert (caught.value.field, caught.value.code) == ("discount_code", "discount_currency")
