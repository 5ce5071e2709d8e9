from decimal import Decimal
from fractions import Fraction

import pytest
from babel.numbers import get_currency_precision
from hypothesis import given
from hypothesis import strategies as st

from billing.money import (
    CURRENCIES,
    MAX_AMOUNT,
    CurrencyMismatch,
    InvalidAmount,
    Money,
    UnknownCurrency,
    allocate,
    check_chargeable,
    format_amount,
    get_currency,
    is_supported_currency,
    multiply,
    parse_amount,
    percentage_of,
    round_half_up,
    split_evenly,
    to_stripe_amount,
)

PROPERTY_CURRENCIES = ["usd", "eur", "jpy", "kwd"]

currencies = st.sampled_from(PROPERTY_CURRENCIES)
amounts = st.integers(min_value=-(10**15), max_value=10**15)
int_weights = st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=12).filter(any)
decimal_weights = st.lists(
    st.decimals(min_value=0, max_value=1000, places=4, allow_nan=False, allow_infinity=False),
    min_size=1,
    max_size=12,
).filter(any)
decimals = st.decimals(min_value=-(10**12), max_value=10**12, places=6, allow_nan=False, allow_infinity=False)


# --- currency table -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("code", "exponent", "granularity"),
    [
        ("usd", 2, 1),
        ("eur", 2, 1),
        ("jpy", 0, 1),
        ("krw", 0, 1),
        ("kwd", 3, 10),
        ("bhd", 3, 10),
        ("isk", 2, 100),  # two-decimal in Stripe's API though zero-decimal in ISO/CLDR
        ("ugx", 2, 100),  # same special case as isk, see the comment in billing/money.py
        ("huf", 2, 1),
    ],
)
def test_exponent_and_granularity(code, exponent, granularity):
    currency = get_currency(code)
    assert (currency.code, currency.exponent, currency.granularity) == (code, exponent, granularity)


def test_exponent_is_stripes_not_cldr_display_digits():
    # CLDR displays the Albanian lek without decimals; Stripe counts it in hundredths.
    assert get_currency_precision("ALL") == 0
    assert get_currency("all").exponent == 2


def test_every_zero_decimal_currency_in_stripes_list():
    zero = [
        "bif",
        "clp",
        "djf",
        "gnf",
        "jpy",
        "kmf",
        "krw",
        "mga",
        "pyg",
        "rwf",
        "vnd",
        "vuv",
        "xaf",
        "xof",
        "xpf",
    ]
    assert {code for code, c in CURRENCIES.items() if c.exponent == 0} == set(zero)
    assert {code for code, c in CURRENCIES.items() if c.exponent == 3} == {"bhd", "jod", "kwd", "omr", "tnd"}


def test_minimum_charge():
    assert get_currency("usd").minimum_charge == 50
    assert get_currency("gbp").minimum_charge == 30
    assert get_currency("huf").minimum_charge == 17500
    assert get_currency("kwd").minimum_charge is None


def test_lookup_is_case_insensitive_and_unknown_raises():
    assert get_currency("USD") is get_currency("usd")
    assert is_supported_currency("EUR")
    assert not is_supported_currency("zzz")
    assert not is_supported_currency("")
    with pytest.raises(UnknownCurrency):
        get_currency("zzz")
    with pytest.raises(ValueError):  # UnknownCurrency is a ValueError
        get_currency("dollars")


def test_currencies_is_read_only():
    with pytest.raises(TypeError):
        CURRENCIES["zzz"] = CURRENCIES["usd"]  # type: ignore[index]


# --- rounding -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [("0.5", 1), ("1.5", 2), ("2.5", 3), ("-0.5", -1), ("-2.5", -3), ("0.49999", 0), ("-1.4", -1), ("7", 7)],
)
def test_round_half_up_is_half_away_from_zero(value, expected):
    # round() would give 0 and 2 for 0.5 and 2.5 (banker's rounding).
    assert round_half_up(Decimal(value)) == expected


def test_round_half_up_fraction_is_exact():
    assert round_half_up(Fraction(1, 2)) == 1
    assert round_half_up(Fraction(-5, 2)) == -3
    assert round_half_up(Fraction(1, 3)) == 0
    assert round_half_up(Fraction(2, 3)) == 1
    # Just below a half, beyond Decimal's default 28 digits: still rounds down.
    assert round_half_up(Fraction(10**40 - 1, 2 * 10**40)) == 0


@pytest.mark.parametrize("bad", [0.5, True, "1", None])
def test_round_half_up_rejects_non_exact_types(bad):
    with pytest.raises(TypeError):
        round_half_up(bad)


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-Infinity", "1E+100"])
def test_round_half_up_rejects_non_finite_and_huge(bad):
    with pytest.raises(ValueError):
        round_half_up(Decimal(bad))


@given(decimals)
def test_round_half_up_properties(value):
    result = round_half_up(value)
    assert abs(result - value) <= Decimal("0.5")
    assert round_half_up(-value) == -result
    assert round_half_up(Fraction(value)) == result


def test_percentage_of():
    assert percentage_of(1000, 250) == 25
    assert percentage_of(1050, 290) == 30  # 30.45
    assert percentage_of(1, 5000) == 1  # 0.5
    assert percentage_of(5, 5000) == 3  # 2.5, not 2
    assert percentage_of(-5, 5000) == -3
    assert percentage_of(999, 0) == 0
    with pytest.raises(TypeError):
        percentage_of(1000, 2.5)


def test_multiply():
    assert multiply(1000, Decimal("0.19")) == 190
    assert multiply(999, Decimal("0.5")) == 500  # 499.5
    assert multiply(1000, Fraction(1, 3)) == 333
    assert multiply(2000, Fraction(1, 3)) == 667
    assert multiply(-999, Decimal("0.5")) == -500
    # Proration to the second: 9 days of a 30-day month.
    assert multiply(1000, Fraction(9 * 86400, 30 * 86400)) == 300
    with pytest.raises(TypeError):
        multiply(1000, 0.19)
    with pytest.raises(ValueError):
        multiply(1000, Decimal("NaN"))
    with pytest.raises(InvalidAmount):
        multiply(MAX_AMOUNT, 2)


# --- allocation ---------------------------------------------------------------------
def test_allocate_examples():
    assert allocate(100, [1, 1, 1]) == [34, 33, 33]
    assert allocate(-100, [1, 1, 1]) == [-34, -33, -33]
    assert allocate(5, [1, 0, 1]) == [3, 0, 2]
    assert allocate(0, [3, 7]) == [0, 0]
    assert allocate(10, [Decimal("0.3"), Decimal("0.7")]) == [3, 7]
    assert allocate(1, [1, 2]) == [0, 1]  # largest remainder, not first position
    assert split_evenly(10, 3) == [4, 3, 3]
    assert split_evenly(-10, 4) == [-3, -3, -2, -2]


@pytest.mark.parametrize("weights", [[], [0, 0], [1, -1], [Decimal("NaN")]])
def test_allocate_rejects_bad_weights(weights):
    with pytest.raises(ValueError):
        allocate(100, weights)


def test_split_evenly_rejects_bad_n():
    with pytest.raises(ValueError):
        split_evenly(100, 0)


@given(amounts, st.one_of(int_weights, decimal_weights))
def test_allocate_sums_back_and_stays_within_one_of_exact_share(amount, weights):
    parts = allocate(amount, weights)
    assert len(parts) == len(weights)
    assert sum(parts) == amount
    total = sum(Fraction(w) for w in weights)
    for part, weight in zip(parts, weights, strict=True):
        assert abs(part - amount * Fraction(weight) / total) < 1
        if weight == 0:
            assert part == 0
    assert allocate(-amount, weights) == [-p for p in parts]


@given(amounts, st.integers(min_value=1, max_value=50))
def test_split_evenly_parts_differ_by_at_most_one(amount, n):
    parts = split_evenly(amount, n)
    assert sum(parts) == amount
    assert max(parts) - min(parts) <= 1


# --- Money --------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [1.0, Decimal(1), True, "1", None])
def test_money_amount_must_be_int(bad):
    with pytest.raises(TypeError):
        Money(bad, "usd")


@pytest.mark.parametrize("bad", ["USD", "zzz", "", None])
def test_money_currency_must_be_known_lowercase(bad):
    with pytest.raises(UnknownCurrency):
        Money(1, bad)


def test_money_range_is_bigintegerfield():
    Money(MAX_AMOUNT, "usd")
    with pytest.raises(InvalidAmount):
        Money(MAX_AMOUNT, "usd") + Money(1, "usd")


def test_money_basics():
    a, b = Money(1234, "usd"), Money(66, "usd")
    assert a + b == Money(1300, "usd")
    assert a - b == Money(1168, "usd")
    assert -a == Money(-1234, "usd")
    assert b < a and a > b and a >= a and b <= a
    assert Money.zero("jpy") == Money(0, "jpy") and Money.zero("jpy").is_zero
    assert not a.is_zero
    assert Money(0, "usd") != Money(0, "eur")
    assert len({Money(1, "usd"), Money(1, "usd")}) == 1


def test_money_currency_mismatch():
    usd, eur = Money(100, "usd"), Money(100, "eur")
    for op in (lambda: usd + eur, lambda: usd - eur, lambda: usd < eur, lambda: usd >= eur):
        with pytest.raises(CurrencyMismatch):
            op()
    with pytest.raises(TypeError):
        usd + 1


@pytest.mark.parametrize(
    ("money", "decimal", "text"),
    [
        (Money(1234, "usd"), Decimal("12.34"), "usd 12.34"),
        (Money(-5, "usd"), Decimal("-0.05"), "usd -0.05"),
        (Money(500, "jpy"), Decimal(500), "jpy 500"),
        (Money(1234, "kwd"), Decimal("1.234"), "kwd 1.234"),
        (Money(0, "eur"), Decimal(0), "eur 0.00"),
    ],
)
def test_money_to_decimal_and_str(money, decimal, text):
    assert money.to_decimal() == decimal
    assert str(money) == text


def test_money_from_decimal_rounds_half_up():
    assert Money.from_decimal(Decimal("12.345"), "usd") == Money(1235, "usd")
    assert Money.from_decimal(Decimal("12.344"), "usd") == Money(1234, "usd")
    assert Money.from_decimal(Decimal("-0.005"), "usd") == Money(-1, "usd")
    assert Money.from_decimal(Decimal("499.5"), "jpy") == Money(500, "jpy")
    assert Money.from_decimal(Decimal("1.2345"), "kwd") == Money(1235, "kwd")
    assert Money.from_decimal(12, "usd") == Money(1200, "usd")
    with pytest.raises(TypeError):
        Money.from_decimal(12.34, "usd")
    with pytest.raises(InvalidAmount):
        Money.from_decimal(Decimal("sNaN"), "usd")


money_pairs = currencies.flatmap(lambda c: st.tuples(*[amounts.map(lambda a, c=c: Money(a, c))] * 3))


@given(money_pairs)
def test_money_arithmetic_laws(triple):
    a, b, c = triple
    zero = Money.zero(a.currency)
    assert a + b == b + a
    assert (a + b) + c == a + (b + c)
    assert a + zero == a
    assert a - b == a + (-b)
    assert a - a == zero
    negated = -a
    assert -negated == a
    assert (a < b) == (a.amount < b.amount)
    assert (a <= b) == (a.amount <= b.amount)


@given(currencies, amounts)
def test_decimal_round_trip(currency, amount):
    money = Money(amount, currency)
    assert Money.from_decimal(money.to_decimal(), currency) == money


# --- parsing and formatting ---------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "currency", "expected"),
    [
        ("12.34", "usd", 1234),
        ("1,234.56", "usd", 123456),
        ("12", "usd", 1200),
        (" 0.5 ", "usd", 50),
        ("-3.1", "eur", -310),
        ("1,000,000", "jpy", 1000000),
        ("12.345", "kwd", 12345),
        ("12.3", "kwd", 12300),
        ("0", "usd", 0),
        ("007", "usd", 700),
    ],
)
def test_parse_amount(text, currency, expected):
    assert parse_amount(text, currency) == expected


@pytest.mark.parametrize(
    ("text", "currency"),
    [("12.345", "usd"), ("1.5", "jpy"), ("1.000", "jpy"), ("1.2345", "kwd"), ("12.340", "usd")],
)
def test_parse_amount_rejects_too_many_decimals(text, currency):
    with pytest.raises(InvalidAmount, match="decimal place"):
        parse_amount(text, currency)


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "abc",
        "NaN",
        "nan",
        "inf",
        "Infinity",
        "-Infinity",
        "1e3",
        "1E-2",
        "12.",
        ".5",
        "1,23",
        "1,2345",
        "1.234,56",
        "$12",
        "12 usd",
        "--1",
        "+-1",
        "1_000",
        "١٢",  # Arabic-Indic digits
        "9" * 20,
    ],
)
def test_parse_amount_rejects_garbage(text):
    with pytest.raises(InvalidAmount):
        parse_amount(text, "usd")


@given(currencies, amounts, st.booleans())
def test_parse_round_trips_plain_decimal(currency, amount, grouped):
    text = format(Money(amount, currency).to_decimal(), ",f" if grouped else "f")
    assert parse_amount(text, currency) == amount


@pytest.mark.parametrize(
    ("amount", "currency", "locale", "expected"),
    [
        (500, "jpy", "en_US", "¥500"),
        (1234, "kwd", "en_US", "KWD1.234"),
        (1230, "kwd", "en_US", "KWD1.230"),
        (123456, "usd", "en_US", "$1,234.56"),
        (-1234, "usd", "en_US", "-$12.34"),
        (123456, "eur", "de_DE", "1.234,56\xa0€"),
        (1200, "isk", "en_US", "ISK12"),  # whole krónur: CLDR shows no decimals
        (1234, "isk", "en_US", "ISK12.34"),  # but never rounds for display
        (50000, "ugx", "en_US", "UGX500"),
    ],
)
def test_format_amount(amount, currency, locale, expected):
    assert format_amount(amount, currency, locale) == expected


# --- Stripe -------------------------------------------------------------------------
def test_to_stripe_amount_is_identity_after_validation():
    assert to_stripe_amount(1234, "usd") == 1234
    assert to_stripe_amount(500, "jpy") == 500
    with pytest.raises(UnknownCurrency):
        to_stripe_amount(1, "zzz")
    with pytest.raises(TypeError):
        to_stripe_amount(12.34, "usd")


@pytest.mark.parametrize(
    ("amount", "currency"), [(50, "usd"), (30, "gbp"), (1230, "kwd"), (500, "isk"), (1, "krw")]
)
def test_check_chargeable_accepts(amount, currency):
    check_chargeable(amount, currency)


@pytest.mark.parametrize(
    ("amount", "currency", "message"),
    [
        (49, "usd", "minimum"),
        (29, "gbp", "minimum"),
        (0, "kwd", "positive"),
        (-100, "usd", "positive"),
        (1235, "kwd", "multiple of 10"),
        (1250, "isk", "multiple of 100"),
        (50001, "ugx", "multiple of 100"),
    ],
)
def test_check_chargeable_rejects(amount, currency, message):
    with pytest.raises(InvalidAmount, match=message):
        check_chargeable(amount, currency)
