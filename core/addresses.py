"""Billing addresses: the one shape (``line1``, ``line2``, ``city``, ``state``,
``postal_code``, ``country``; the API's ``AddressSerializer``), the country list shown in
forms, the check forms share, and the lines pages show.

Tax is what an address is for here (``billing.tax``): the country decides the rate, and in
the United States and Canada the state or province does too, so those are the required
parts; the street lines, city and postal code are printed on invoices when given."""

import re
import unicodedata
from functools import cache

from babel import Locale

from core.api.fields import COUNTRY_CODES

ADDRESS_PARTS = ("line1", "line2", "city", "state", "postal_code", "country")
MAX_LENGTHS = {"line1": 200, "line2": 200, "city": 100, "state": 100, "postal_code": 20, "country": 2}
# Where the built-in tax engine needs the state or province (see billing.tax._lookup).
STATE_REQUIRED = {"US": "state", "CA": "province"}
REGION_CODE = re.compile(r"^[A-Z]{2}$")


class AddressInvalid(Exception):
    """``errors`` maps each part at fault to its message."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{part}: {message}" for part, message in errors.items()))
        self.errors = errors


@cache
def country_choices(locale: str = "en") -> tuple[tuple[str, str], ...]:
    """(code, name) for every country, sorted by name as people read it (Å with the As)."""
    names = Locale.parse(locale).territories

    def key(item: tuple[str, str]) -> str:
        return unicodedata.normalize("NFKD", item[1]).encode("ascii", "ignore").decode().casefold()

    return tuple(sorted(((code, names.get(code, code)) for code in COUNTRY_CODES), key=key))


def address_clean(parts: dict[str, str | None]) -> dict[str, str] | None:
    """The stored address from its parts (None when every part is empty), or
    ``AddressInvalid`` naming each part at fault: an unknown country, no country for an
    address that has other parts, no state or province where tax depends on it."""
    values = {part: (parts.get(part) or "").strip() for part in ADDRESS_PARTS}
    if not any(values.values()):
        return None
    values["country"] = values["country"].upper()
    errors: dict[str, str] = {}
    for part, limit in MAX_LENGTHS.items():
        if len(values[part]) > limit:
            errors[part] = f"At most {limit} characters."
    country = values["country"]
    if not country:
        errors["country"] = "Select the billing country: tax is computed from it."
    elif country not in COUNTRY_CODES:
        errors["country"] = "Select a country from the list."
    elif country in STATE_REQUIRED:
        region = values["state"].upper().removeprefix(f"{country}-")
        kind = STATE_REQUIRED[country]
        if not region:
            errors["state"] = f"Required in {country}: sales tax depends on the {kind}."
        elif not REGION_CODE.match(region):
            errors["state"] = f"Use the two-letter {kind} code, e.g. {'NY' if country == 'US' else 'QC'}."
        else:
            values["state"] = region
    if errors:
        raise AddressInvalid(errors)
    return {part: value for part, value in values.items() if value}


def address_lines(address: dict | None) -> list[str]:
    """The address as it is written on an envelope: street lines, ``city state postal``, the
    country's name."""
    if not address:
        return []
    names = dict(country_choices())
    locality = " ".join(filter(None, (address.get(p) or "" for p in ("city", "state", "postal_code"))))
    country = address.get("country") or ""
    lines = [address.get("line1") or "", address.get("line2") or "", locality, names.get(country, country)]
    return [str(line) for line in lines if line]
