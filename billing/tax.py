"""Tax: the engine interface and a built-in, table-driven implementation.

A :class:`TaxEngine` answers one question: how much tax is due on a taxable amount (minor
units, after discount) for a buyer in a given place. :func:`get_tax_engine` returns the
engine in use: :class:`BuiltinTaxEngine` unless the ``RECUR_TAX_ENGINE`` setting names
another one (a dotted path to a class, which is instantiated, or to an engine object).

Rates
    Rates are exact ``Decimal`` percentages (``Decimal("20")``, ``Decimal("9.975")``), not
    integer basis points: Quebec's GST + QST is 14.975% and New Jersey's 6.625%, which
    basis points cannot hold. The tax is computed from the exact rate with ``Fraction``
    arithmetic and rounded once, half-up, by :mod:`billing.money`.
    :attr:`TaxResult.rate_bps` is that rate rounded half-up to whole basis points, for
    storage (``Order.tax_rate_bps``) and display only; :attr:`TaxResult.rate` is exact.

The built-in table (:data:`TAX_RATES_AS_OF`)
    Standard VAT/GST rates as in force on 1 January 2026 for the 27 EU member states
    (including Estonia's 24% since July 2025, Romania's 21% since August 2025, Slovakia's
    23% and Finland's 25.5%), GB, NO, CH, IS, AU, NZ, JP, SG and IN; Canada's federal GST
    with each province's HST, QST or PST (Nova Scotia's 14% HST since April 2025); and the
    state-level base sales tax of a handful of US states. The US rates are the state's
    general rate only: no county or city taxes, and no product taxability (many states,
    California among them, do not tax SaaS). Anything outside the table is taxed at 0 with
    a note saying so. Review the table when rates change; it is data, not logic.

Reverse charge
    Jurisdictions marked ``b2b_reverse_charge`` (the EU member states, GB and NO) do not
    get tax from the seller on a business purchase when the buyer's tax id is valid for
    the billing country (python-stdnum; a Greek VAT number is "EL..." and its billing
    country "GR"): the result is rate 0, tax 0, ``reverse_charge=True`` and the legal note
    for the invoice. This assumes the seller is not established in the buyer's country
    (Recur selling as merchant of record from elsewhere); a domestic business sale is
    taxed normally. Pass ``seller_country`` (or set ``RECUR_TAX_SELLER_COUNTRY``) for that.
    A missing or invalid tax id on a business purchase is taxed normally with
    ``tax_id_valid=False``; a consumer purchase is never reverse-charged.

Sign
    Amounts may be negative (credits); the tax of ``-x`` is exactly ``-(tax of x)`` since
    money.py rounds half away from zero.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from types import MappingProxyType
from typing import Protocol, runtime_checkable

from stdnum.au import abn as au_abn
from stdnum.ca import bn as ca_bn
from stdnum.ch import vat as ch_vat
from stdnum.eu import vat as eu_vat
from stdnum.gb import vat as gb_vat
from stdnum.in_ import gstin as in_gstin
from stdnum.is_ import vsk as is_vsk
from stdnum.jp import cn as jp_cn
from stdnum.no import mva as no_mva
from stdnum.nz import ird as nz_ird
from stdnum.us import ein as us_ein

from billing.money import allocate, get_currency, multiply, round_half_up

__all__ = [
    "TAX_RATES_AS_OF",
    "BuiltinTaxEngine",
    "TaxComponent",
    "TaxEngine",
    "TaxQuery",
    "TaxResult",
    "get_tax_engine",
    "normalize_country",
    "reverse_charge_note",
    "tax_id_validate",
    "tax_label",
]

TAX_RATES_AS_OF = "2026-01-01"


# --- the interface --------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TaxQuery:
    amount: int  # taxable amount in minor units, after discount
    currency: str
    inclusive: bool  # True: ``amount`` already contains the tax
    country: str  # ISO 3166-1 alpha-2 of the billing address; may be ""
    state: str = ""  # US state / Canadian province code ("NY" or "US-NY")
    postal_code: str = ""  # not used by the built-in engine
    tax_id: str = ""
    is_business: bool = False


@dataclass(frozen=True, slots=True)
class TaxComponent:
    """One tax of a combined rate (Quebec: GST and QST). Components' taxes sum to the total."""

    name: str
    rate: Decimal  # exact percentage
    tax: int


@dataclass(frozen=True, slots=True)
class TaxResult:
    rate_bps: int  # ``rate`` rounded half-up to basis points: storage and display only
    tax: int  # minor units; inside ``amount`` when ``inclusive``
    inclusive: bool
    reverse_charge: bool
    jurisdiction: str  # "FR", "US-NY", "CA-QC"; "" without a country
    tax_id_valid: bool
    note: str  # for the invoice and the logs; "" when there is nothing to say
    rate: Decimal = Decimal(0)  # exact percentage (14.975 for Quebec)
    label: str = "Tax"  # what the tax is called: "VAT", "GST", "HST", "GST + QST", "Sales tax"
    components: tuple[TaxComponent, ...] = ()


@runtime_checkable
class TaxEngine(Protocol):
    def calculate(self, query: TaxQuery) -> TaxResult: ...


# --- the table ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Jurisdiction:
    label: str
    components: tuple[tuple[str, Decimal], ...]  # (name, exact percentage)
    b2b_reverse_charge: bool = False
    note: str = ""

    @property
    def rate(self) -> Decimal:
        return sum((rate for _, rate in self.components), Decimal(0))


def _single(label: str, rate: str, *, b2b_reverse_charge: bool = False, note: str = "") -> _Jurisdiction:
    return _Jurisdiction(label, ((label, Decimal(rate)),), b2b_reverse_charge, note)


_EU_REVERSE_CHARGE_NOTE = (
    "Reverse charge: VAT to be accounted for by the recipient (Art. 196 Directive 2006/112/EC)"
)
_REVERSE_CHARGE_NOTES = {
    "GB": "Reverse charge: customer to account for VAT to HMRC",
    "NO": "Reverse charge: VAT to be accounted for by the recipient",
}

# Standard rates as of TAX_RATES_AS_OF (percent).
EU_VAT_RATES: Mapping[str, str] = MappingProxyType(
    {
        "AT": "20",
        "BE": "21",
        "BG": "20",
        "CY": "19",
        "CZ": "21",
        "DE": "19",
        "DK": "25",
        "EE": "24",  # 22 -> 24 on 2025-07-01
        "ES": "21",
        "FI": "25.5",  # 24 -> 25.5 on 2024-09-01
        "FR": "20",
        "GR": "24",  # VAT numbers are prefixed "EL"
        "HR": "25",
        "HU": "27",
        "IE": "23",
        "IT": "22",
        "LT": "21",
        "LU": "17",
        "LV": "21",
        "MT": "18",
        "NL": "21",
        "PL": "23",
        "PT": "23",  # mainland; Madeira 22, Azores 16 are not modelled
        "RO": "21",  # 19 -> 21 on 2025-08-01
        "SE": "25",
        "SI": "22",
        "SK": "23",  # 20 -> 23 on 2025-01-01
    }
)

_COUNTRIES: dict[str, _Jurisdiction] = {
    **{cc: _single("VAT", rate, b2b_reverse_charge=True) for cc, rate in EU_VAT_RATES.items()},
    "GB": _single("VAT", "20", b2b_reverse_charge=True),
    "NO": _single("VAT", "25", b2b_reverse_charge=True),
    "CH": _single("VAT", "8.1"),
    "IS": _single("VAT", "24"),
    "AU": _single("GST", "10"),
    "NZ": _single("GST", "15"),
    "JP": _single("JCT", "10"),
    "SG": _single("GST", "9"),
    "IN": _single("GST", "18"),
}

_CA_GST = ("GST", Decimal("5"))
_CA_GST_ONLY = _Jurisdiction("GST", (_CA_GST,))
_CA_PROVINCES: dict[str, _Jurisdiction] = {
    "AB": _CA_GST_ONLY,
    "NT": _CA_GST_ONLY,
    "NU": _CA_GST_ONLY,
    "YT": _CA_GST_ONLY,
    "ON": _single("HST", "13"),
    "NS": _single("HST", "14"),  # 15 -> 14 on 2025-04-01
    "NB": _single("HST", "15"),
    "NL": _single("HST", "15"),
    "PE": _single("HST", "15"),
    "QC": _Jurisdiction("GST + QST", (_CA_GST, ("QST", Decimal("9.975")))),
    "BC": _Jurisdiction("GST + PST", (_CA_GST, ("PST", Decimal("7")))),
    "MB": _Jurisdiction("GST + RST", (_CA_GST, ("RST", Decimal("7")))),
    "SK": _Jurisdiction("GST + PST", (_CA_GST, ("PST", Decimal("6")))),
}
_CA_UNKNOWN_PROVINCE = _Jurisdiction(
    "GST", (_CA_GST,), note="Province unknown: federal GST only (no HST, QST or PST)"
)

# State-level general sales tax rates (percent); no local taxes, no product taxability.
_US_STATES: dict[str, _Jurisdiction] = {
    state: _single("Sales tax", rate)
    for state, rate in {
        "CA": "7.25",
        "CO": "2.9",
        "FL": "6",
        "GA": "4",
        "IL": "6.25",
        "MA": "6.25",
        "NJ": "6.625",
        "NY": "4",
        "PA": "6",
        "TX": "6.25",
        "WA": "6.5",
    }.items()
}
_US_NO_SALES_TAX = frozenset({"AK", "DE", "MT", "NH", "OR"})

_NO_TAX = _Jurisdiction("Tax", ())

_COUNTRY_ALIASES = {"EL": "GR", "UK": "GB"}


def normalize_country(country: str) -> str:
    """Upper-case ISO alpha-2; the VAT prefix "EL" and the common "UK" are mapped to GR and GB."""
    code = (country or "").strip().upper()
    return _COUNTRY_ALIASES.get(code, code)


def _normalize_region(country: str, state: str) -> str:
    region = (state or "").strip().upper()
    if region.startswith(f"{country}-"):
        region = region[len(country) + 1 :]
    return region


def _lookup(country: str, state: str) -> tuple[str, _Jurisdiction]:
    """(jurisdiction code, table entry) for a normalized country and region."""
    if not country:
        return "", _Jurisdiction("Tax", (), note="No billing country: no tax calculated")
    if country == "US":
        if not state:
            return "US", _Jurisdiction("Sales tax", (), note="US state unknown: no sales tax calculated")
        code = f"US-{state}"
        if state in _US_NO_SALES_TAX:
            return code, _Jurisdiction("Sales tax", (), note=f"{state} has no state sales tax")
        entry = _US_STATES.get(state)
        if entry is None:
            return code, _Jurisdiction("Sales tax", (), note=f"No rate in the built-in table for {code}")
        return code, entry
    if country == "CA":
        entry = _CA_PROVINCES.get(state)
        if entry is None:
            return "CA", _CA_UNKNOWN_PROVINCE
        return f"CA-{state}", entry
    entry = _COUNTRIES.get(country)
    if entry is None:
        return country, _Jurisdiction("Tax", (), note=f"No rate in the built-in table for {country}")
    return country, entry


def tax_label(country: str, state: str = "") -> str:
    """What the tax is called where the buyer is ("VAT", "GST", "HST", "Sales tax"...)."""
    cc = normalize_country(country)
    return _lookup(cc, _normalize_region(cc, state))[1].label


def reverse_charge_note(country: str) -> str:
    """The invoice mention for a reverse-charged sale to ``country`` ("" if none applies)."""
    cc = normalize_country(country)
    if cc in EU_VAT_RATES:
        return _EU_REVERSE_CHARGE_NOTE
    return _REVERSE_CHARGE_NOTES.get(cc, "")


# --- tax ids --------------------------------------------------------------------------
def _eu_validator(country: str) -> Callable[[str], bool]:
    prefixes = {"EL", "GR"} if country == "GR" else {country}
    own = "EL" if country == "GR" else country

    def validate(tax_id: str) -> bool:
        number = re.sub(r"[\s\-./,]", "", tax_id).upper()
        # As typed ("FR40303265045"), or without the country prefix ("40303265045").
        return any(
            candidate[:2] in prefixes and eu_vat.is_valid(candidate) for candidate in (number, own + number)
        )

    return validate


def _any_of(*checks: Callable[[str], bool]) -> Callable[[str], bool]:
    return lambda tax_id: any(check(tax_id) for check in checks)


_TAX_ID_VALIDATORS: dict[str, Callable[[str], bool]] = {
    **{cc: _eu_validator(cc) for cc in EU_VAT_RATES},
    "GB": gb_vat.is_valid,
    "NO": _any_of(no_mva.is_valid, lambda v: no_mva.is_valid(f"{v}MVA")),
    "CH": _any_of(ch_vat.is_valid, lambda v: ch_vat.is_valid(f"{v} MWST")),
    "IS": is_vsk.is_valid,
    "AU": au_abn.is_valid,
    "NZ": nz_ird.is_valid,
    "IN": in_gstin.is_valid,
    "CA": ca_bn.is_valid,
    # Qualified invoice issuer numbers are "T" + the 13-digit corporate number.
    "JP": lambda v: jp_cn.is_valid(re.sub(r"^\s*[Tt]", "", v)),
    "US": us_ein.is_valid,
}
# Elsewhere only obviously malformed input is refused: a checkout must not be blocked by
# an id format this module does not know.
_PLAUSIBLE_TAX_ID = re.compile(r"(?=.*[0-9])[A-Za-z0-9][A-Za-z0-9 .\-/]{2,62}[A-Za-z0-9]")


def tax_id_validate(tax_id: str, country: str) -> bool:
    """Whether ``tax_id`` is a valid tax id for a buyer billed in ``country``.

    EU VAT numbers must carry (or are given) the country's own prefix ("EL" for Greece):
    a German number for a French address is not valid. Countries with a python-stdnum
    validator (EU, GB, NO, CH, IS, AU, NZ, IN, CA, JP, US) are checked with it, including
    check digits; for any other country only the shape is checked (4 to 64 letters, digits,
    spaces, dots, dashes or slashes, with at least one digit). An empty id is not valid.
    """
    if not isinstance(tax_id, str) or not tax_id.strip():
        return False
    cc = normalize_country(country)
    validator = _TAX_ID_VALIDATORS.get(cc)
    if validator is None:
        return _PLAUSIBLE_TAX_ID.fullmatch(tax_id.strip()) is not None
    try:
        return bool(validator(tax_id.strip()))
    except Exception:  # a validator refusing odd input is a "no"
        return False


# --- computation ----------------------------------------------------------------------
def _tax_amount(amount: int, rate: Decimal, inclusive: bool) -> int:
    """Exclusive: ``amount * r``. Inclusive: the tax inside ``amount``, ``amount - amount / (1 + r)``
    which is ``amount * r / (1 + r)``. Exact, rounded once half-up by money.py."""
    r = Fraction(rate) / 100
    return multiply(amount, r / (1 + r) if inclusive else r)


class BuiltinTaxEngine:
    """Table-driven taxes (see the module docstring). ``seller_country``: where the seller
    is established; a business sale inside that country is not reverse-charged."""

    def __init__(self, seller_country: str = "") -> None:
        self.seller_country = normalize_country(seller_country)

    def calculate(self, query: TaxQuery) -> TaxResult:
        if isinstance(query.amount, bool) or not isinstance(query.amount, int):
            raise TypeError(f"amount must be int minor units, got {type(query.amount).__name__}")
        get_currency(query.currency)  # UnknownCurrency for a bad code
        country = normalize_country(query.country)
        jurisdiction, entry = _lookup(country, _normalize_region(country, query.state))
        tax_id_valid = bool(country) and tax_id_validate(query.tax_id, country)

        if entry.b2b_reverse_charge and query.is_business and tax_id_valid and country != self.seller_country:
            return TaxResult(
                rate_bps=0,
                tax=0,
                inclusive=query.inclusive,
                reverse_charge=True,
                jurisdiction=jurisdiction,
                tax_id_valid=True,
                note=reverse_charge_note(country),
                rate=Decimal(0),
                label=entry.label,
            )

        rate = entry.rate
        tax = _tax_amount(query.amount, rate, query.inclusive) if rate else 0
        components: tuple[TaxComponent, ...] = ()
        if rate:
            # One rounding for the whole rate; the parts are split so they sum back exactly.
            parts = allocate(tax, [component_rate for _, component_rate in entry.components])
            components = tuple(
                TaxComponent(name, component_rate, part)
                for (name, component_rate), part in zip(entry.components, parts, strict=True)
            )
        note = entry.note
        if query.is_business and query.tax_id.strip() and not tax_id_valid and entry.b2b_reverse_charge:
            note = f"Tax id {query.tax_id.strip()!r} is not valid for {country}: {entry.label} charged"
        return TaxResult(
            rate_bps=round_half_up(rate * 100),
            tax=tax,
            inclusive=query.inclusive,
            reverse_charge=False,
            jurisdiction=jurisdiction,
            tax_id_valid=tax_id_valid,
            note=note,
            rate=rate,
            label=entry.label,
            components=components,
        )


def get_tax_engine() -> TaxEngine:
    """The engine in use: ``settings.RECUR_TAX_ENGINE`` (a dotted path to an engine class,
    instantiated without arguments, or to an engine object) or :class:`BuiltinTaxEngine`."""
    from django.conf import settings
    from django.utils.module_loading import import_string

    path = getattr(settings, "RECUR_TAX_ENGINE", None)
    if path:
        engine = import_string(path)
        return engine() if isinstance(engine, type) else engine
    return BuiltinTaxEngine(seller_country=getattr(settings, "RECUR_TAX_SELLER_COUNTRY", None) or "")
