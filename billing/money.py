"""Money: the one place in Recur that rounds.

Amounts are ``int`` minor units as Stripe's API counts them, next to a lowercase
ISO 4217 code (DESIGN.md section 3). Every rounding goes through :func:`round_half_up`:
Decimal/Fraction arithmetic, half-up, never ``float``, never bare ``round()``.

Half-up means half *away from zero* (``Decimal.ROUND_HALF_UP``): 0.5 -> 1, 2.5 -> 3,
-0.5 -> -1. That is what Stripe does, and it makes rounding symmetric,
``round(-x) == -round(x)``, so a credit for a line is exactly the negated charge.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from fractions import Fraction
from types import MappingProxyType

from babel import Locale
from babel.numbers import get_currency_precision, list_currencies

__all__ = [
    "CURRENCIES",
    "Currency",
    "CurrencyMismatch",
    "InvalidAmount",
    "Money",
    "UnknownCurrency",
    "allocate",
    "chargeable_part",
    "check_chargeable",
    "format_amount",
    "get_currency",
    "is_supported_currency",
    "multiply",
    "parse_amount",
    "percentage_of",
    "round_half_up",
    "split_evenly",
    "to_stripe_amount",
]


class UnknownCurrency(ValueError):
    pass


class CurrencyMismatch(ValueError):
    pass


class InvalidAmount(ValueError):
    pass


# Amounts live in BigIntegerField; symmetric bound so negation never overflows.
MAX_AMOUNT = 2**63 - 1
# The largest amount any outside input (API, backoffice, import) may name: a price, a
# discount, a refund, a wallet or balance adjustment. Far under MAX_AMOUNT, so balances
# summing millions of such amounts, and their tax and fee arithmetic, still fit the ledger.
LEDGER_AMOUNT_MAX = 999_999_999_999


def amount_in_bounds(amount: int) -> bool:
    """Whether an amount from outside is one the ledger can hold (negative for debits)."""
    return -LEDGER_AMOUNT_MAX <= amount <= LEDGER_AMOUNT_MAX


# --- the currency table -------------------------------------------------------------
# Stripe: "unless listed otherwise, currencies are two-decimal". Babel's
# get_currency_precision() is CLDR *display* digits, not API minor units: it says 0 for
# all, afn, lak, lbp, mmk, rsd, sos, yer, ... which Stripe counts in hundredths, so taking
# it as the exponent would charge 100x too little. Babel supplies the set of known codes
# and formatting; the exponent comes from Stripe's lists below, else 2.
_ZERO_DECIMAL = frozenset(
    ["bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "vnd", "vuv", "xaf", "xof", "xpf"]
)
# Stripe wants the last digit 0 for these.
_THREE_DECIMAL = frozenset(["bhd", "jod", "kwd", "omr", "tnd"])
# isk and ugx became zero-decimal but Stripe's API keeps them two-decimal for backwards
# compatibility: 5 ISK / 5 UGX is amount=500 and charges must be divisible by 100
# ("Currency UGX has become effectively zero-decimal and charged amounts must be evenly
# divisible by 100", docs.stripe.com/currencies#special-cases). STRIPE-NOTES lists ugx
# as zero-decimal, which is the ISO view and 100x off for the API. huf and twd are
# two-decimal for charges (the divisible-by-100 rule is for payouts only).
_TWO_DECIMAL_WHOLE_UNITS = frozenset({"isk", "ugx"})

_MINIMUM_CHARGE: dict[str, int] = {
    **dict.fromkeys(["usd", "eur", "aud", "cad", "chf", "nzd", "sgd", "brl", "inr"], 50),
    "gbp": 30,
    "jpy": 50,
    "dkk": 250,
    "nok": 300,
    "sek": 300,
    "hkd": 400,
    "mxn": 1000,
    "czk": 1500,
    "huf": 17500,
    **dict.fromkeys(["aed", "myr", "pln", "ron"], 200),
    "bgn": 100,
}


@dataclass(frozen=True, slots=True)
class Currency:
    code: str  # lowercase ISO 4217
    exponent: int  # minor-unit digits as Stripe's API counts them
    minimum_charge: int | None  # minor units; None when Stripe's minimum is not on record
    granularity: int  # a charge amount must be a multiple of this many minor units


def _build_currency(code: str) -> Currency:
    if code in _ZERO_DECIMAL:
        exponent, granularity = 0, 1
    elif code in _THREE_DECIMAL:
        exponent, granularity = 3, 10
    elif code in _TWO_DECIMAL_WHOLE_UNITS:
        exponent, granularity = 2, 100
    else:
        exponent, granularity = 2, 1
    return Currency(code, exponent, _MINIMUM_CHARGE.get(code), granularity)


CURRENCIES: Mapping[str, Currency] = MappingProxyType(
    {code.lower(): _build_currency(code.lower()) for code in sorted(list_currencies())}
)


def get_currency(code: str) -> Currency:
    try:
        return CURRENCIES[code.lower()]
    except (KeyError, AttributeError):
        raise UnknownCurrency(f"unknown currency {code!r}")


def is_supported_currency(code: str) -> bool:
    return isinstance(code, str) and code.lower() in CURRENCIES


# --- rounding -----------------------------------------------------------------------
# Quantize to an integer is exact or raises: a result wider than prec digits signals
# InvalidOperation (trapped) instead of being rounded a second time by the context.
_QUANTIZE = Context(prec=60, rounding=ROUND_HALF_UP, traps=[InvalidOperation])
_ONE = Decimal(1)


def round_half_up(value: Decimal | Fraction | int) -> int:
    """Round to the nearest integer, halves away from zero. The only rounding primitive."""
    if isinstance(value, bool):
        raise TypeError("bool is not a number here")
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"cannot round {value}")
        try:
            return int(value.quantize(_ONE, rounding=ROUND_HALF_UP, context=_QUANTIZE))
        except InvalidOperation:
            raise ValueError(f"{value} is too large to round")
    if isinstance(value, Fraction):
        # Exact: Fractions (proration by seconds, 1/3 splits) have no finite Decimal form.
        quotient, remainder = divmod(abs(value.numerator), value.denominator)
        if 2 * remainder >= value.denominator:
            quotient += 1
        return quotient if value >= 0 else -quotient
    raise TypeError(f"expected Decimal, Fraction or int, got {type(value).__name__}")


def _check_amount(amount: int) -> int:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise TypeError(f"amounts are int minor units, got {type(amount).__name__}")
    if abs(amount) > MAX_AMOUNT:
        raise InvalidAmount(f"amount {amount} is out of range")
    return amount


def _exact(value: Decimal | Fraction | int, what: str) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, Decimal | Fraction | int):
        raise TypeError(f"{what} must be Decimal, Fraction or int, got {type(value).__name__}")
    if isinstance(value, Decimal) and not value.is_finite():
        raise ValueError(f"{what} must be finite, got {value}")
    return Fraction(value)


def percentage_of(amount: int, bps: int) -> int:
    """``amount * bps / 10_000``, half-up (fees and discounts are quoted in basis points)."""
    _check_amount(amount)
    if isinstance(bps, bool) or not isinstance(bps, int):
        raise TypeError(f"bps must be int, got {type(bps).__name__}")
    return _check_amount(round_half_up(Fraction(amount * bps, 10_000)))


def multiply(amount: int, factor: Decimal | Fraction | int) -> int:
    """``amount * factor``, computed exactly and rounded once, half-up."""
    _check_amount(amount)
    return _check_amount(round_half_up(amount * _exact(factor, "factor")))


# --- allocation ---------------------------------------------------------------------
def allocate(amount: int, weights: Sequence[int | Decimal | Fraction]) -> list[int]:
    """Split ``amount`` in proportion to ``weights`` so the parts sum back exactly.

    Largest remainder: every part is its exact share rounded down (toward zero for
    negative amounts), then the leftover units go to the largest remainders, earlier
    positions first on ties. Each part is within one unit of its exact share.
    """
    _check_amount(amount)
    exact = [_exact(w, "weight") for w in weights]
    if not exact:
        raise ValueError("allocate needs at least one weight")
    if any(w < 0 for w in exact):
        raise ValueError("weights must not be negative")
    total = sum(exact, Fraction(0))
    if total == 0:
        raise ValueError("weights must not all be zero")
    if amount < 0:
        return [-part for part in allocate(-amount, weights)]
    shares = [amount * w / total for w in exact]
    parts = [math.floor(share) for share in shares]
    leftover = amount - sum(parts)
    by_remainder = sorted(range(len(parts)), key=lambda i: (parts[i] - shares[i], i))
    for i in by_remainder[:leftover]:
        parts[i] += 1
    return parts


def split_evenly(amount: int, n: int) -> list[int]:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    return allocate(amount, [1] * n)


# --- Money --------------------------------------------------------------------------
def _to_decimal(amount: int, exponent: int) -> Decimal:
    return Decimal(f"{amount}E-{exponent}")  # from a string: exact, no context involved


@dataclass(frozen=True, slots=True)
class Money:
    amount: int
    currency: str

    def __post_init__(self) -> None:
        _check_amount(self.amount)
        if not isinstance(self.currency, str) or self.currency not in CURRENCIES:
            raise UnknownCurrency(f"currency must be a known lowercase ISO 4217 code, got {self.currency!r}")

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    @classmethod
    def from_decimal(cls, value: Decimal | int, currency: str) -> Money:
        """Major units (e.g. a decimal unit price) to minor units, rounded half-up."""
        if isinstance(value, bool) or not isinstance(value, Decimal | int):
            raise TypeError(f"expected Decimal or int, got {type(value).__name__}")
        value = Decimal(value)
        if not value.is_finite():
            raise InvalidAmount(f"amount must be finite, got {value}")
        sign, digits, exponent = value.as_tuple()
        scaled = Decimal((sign, digits, exponent + get_currency(currency).exponent))
        return cls(round_half_up(scaled), currency)

    def to_decimal(self) -> Decimal:
        return _to_decimal(self.amount, CURRENCIES[self.currency].exponent)

    @property
    def is_zero(self) -> bool:
        return self.amount == 0

    def _same(self, other: Money) -> None:
        if self.currency != other.currency:
            raise CurrencyMismatch(f"cannot combine {self.currency} with {other.currency}")

    def __add__(self, other: object) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: object) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same(other)
        return self.amount < other.amount

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same(other)
        return self.amount <= other.amount

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same(other)
        return self.amount > other.amount

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same(other)
        return self.amount >= other.amount

    def __str__(self) -> str:
        return f"{self.currency} {self.to_decimal()}"


# --- text in and out ----------------------------------------------------------------
# Plain digits with "." as the decimal point and optional well-formed "," grouping. No
# locale-aware parsing: "1.234" is a thousand in de_DE and one in en_US.
_AMOUNT_RE = re.compile(r"(?P<sign>-?)(?P<int>[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.(?P<frac>[0-9]+))?")


def parse_amount(text: str, currency: str) -> int:
    """A human-typed amount in major units ("1,234.56") to minor units, exactly.

    Rejects rather than rounds: more decimals than the currency has is an input error,
    and for a zero-decimal currency "1.000" is more likely a thousand than one.
    """
    cur = get_currency(currency)
    if not isinstance(text, str):
        raise TypeError(f"expected str, got {type(text).__name__}")
    match = _AMOUNT_RE.fullmatch(text.strip())
    if match is None:
        raise InvalidAmount(f"{text!r} is not an amount (expected digits like 1234.56)")
    whole = match["int"].replace(",", "")
    frac = match["frac"] or ""
    if len(frac) > cur.exponent:
        allowed = f"at most {cur.exponent}" if cur.exponent else "no"
        raise InvalidAmount(
            f"{text.strip()!r} has {len(frac)} decimal place{'s' * (len(frac) > 1)}; "
            f"{cur.code} allows {allowed} decimal places"
        )
    digits = (whole + frac.ljust(cur.exponent, "0")).lstrip("0") or "0"
    if len(digits) > 19:  # before int(): bounds the work, 2**63 has 19 digits
        raise InvalidAmount(f"{text.strip()!r} is out of range")
    amount = int(digits)
    return _check_amount(-amount if match["sign"] else amount)


def format_amount(amount: int, currency: str, locale: str = "en_US") -> str:
    """For people: Babel's currency format for ``locale``, never rounded for display.

    Shows the CLDR number of decimals when that is exact (jpy "¥500", isk "ISK12",
    kwd "KWD1.234"), else all of the currency's minor-unit digits.
    """
    _check_amount(amount)
    cur = get_currency(currency)
    digits = get_currency_precision(cur.code.upper())
    if digits < cur.exponent and amount % 10 ** (cur.exponent - digits):
        digits = cur.exponent
    pattern = copy.copy(Locale.parse(locale).currency_formats["standard"])
    pattern.frac_prec = (digits, digits)
    return pattern.apply(
        _to_decimal(amount, cur.exponent), locale, currency=cur.code.upper(), currency_digits=False
    )


# --- Stripe -------------------------------------------------------------------------
def to_stripe_amount(amount: int, currency: str) -> int:
    """The ``amount`` Stripe expects. Identity (the table stores Stripe's exponent); the
    one checkpoint every amount passes on its way out. Use :func:`check_chargeable` too
    for amounts that are charged (PaymentIntent, invoice total)."""
    _check_amount(amount)
    get_currency(currency)
    return amount


def check_chargeable(amount: int, currency: str) -> None:
    """Raise :class:`InvalidAmount` if Stripe would refuse to charge ``amount``."""
    _check_amount(amount)
    cur = get_currency(currency)
    if amount <= 0:
        raise InvalidAmount(f"a charge must be positive, got {amount}")
    if cur.minimum_charge is not None and amount < cur.minimum_charge:
        raise InvalidAmount(
            f"{format_amount(amount, cur.code)} is below Stripe's minimum charge of "
            f"{format_amount(cur.minimum_charge, cur.code)}"
        )
    if amount % cur.granularity:
        raise InvalidAmount(
            f"{cur.code} charges must be a multiple of {cur.granularity} minor units, got {amount}"
        )


def chargeable_part(amount: int, currency: str) -> int:
    """The largest part of ``amount`` the processor can charge: whole steps of the currency's
    granularity, and nothing when that is below its minimum charge. The rest cannot be
    charged on its own and is carried to a later order (``billing.ledger.wallet``)."""
    _check_amount(amount)
    cur = get_currency(currency)
    if amount <= 0:
        return 0
    part = amount - amount % cur.granularity
    if cur.minimum_charge is not None and part < cur.minimum_charge:
        return 0
    return part
