"""What a price and a discount come to. Pure functions: no database writes, no rounding of
their own (percentages go through ``billing.money``). Checkout, renewals and previews all
price through here, so a customer is always quoted what they are charged.

Seat tiers are a list, ascending, the last one open-ended::

    [{"up_to": 10, "unit_amount": 800, "flat_amount": 0},
     {"up_to": None, "unit_amount": 600}]

- ``volume``: every seat at the unit amount of the tier the total falls in, plus that
  tier's flat amount (12 seats above: 12 x 600 = 7200).
- ``graduated``: each tier's seats at that tier's unit amount, plus the flat amount of
  every tier touched (12 seats above: 10 x 800 + 2 x 600 = 9200).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from billing.catalog.models import Discount, Price
from billing.money import MAX_AMOUNT, InvalidAmount, check_chargeable, get_currency, percentage_of
from core.errors import InvalidInput

__all__ = ["check_amount_chargeable", "discount_amount", "price_subtotal", "seat_tiers_total"]


def check_amount_chargeable(amount: int, currency: str, *, field: str) -> None:
    """Stripe must accept ``amount`` as a charge: at least the minimum, in whole steps."""
    try:
        check_chargeable(amount, currency)
    except InvalidAmount as exc:
        cur = get_currency(currency)
        if cur.minimum_charge is not None and 0 < amount < cur.minimum_charge:
            raise InvalidInput(str(exc), field=field, code="below_minimum_charge")
        raise InvalidInput(str(exc), field=field, code="amount_not_chargeable")


def seat_tiers_total(tiers: Sequence[Mapping[str, Any]], mode: str, seats: int) -> int:
    """The amount of ``seats`` seats under ``tiers`` (validated, ascending) in ``mode``."""
    if seats < 1:
        raise ValueError("seats must be positive")
    if mode == Price.TierMode.VOLUME:
        for tier in tiers:
            if tier.get("up_to") is None or seats <= tier["up_to"]:
                return seats * tier["unit_amount"] + tier.get("flat_amount", 0)
        raise ValueError("seat tiers must end with an open tier (up_to null)")
    if mode == Price.TierMode.GRADUATED:
        total, below = 0, 0
        for tier in tiers:
            upper = tier.get("up_to")
            in_tier = (seats if upper is None else min(seats, upper)) - below
            if in_tier <= 0:
                break
            total += in_tier * tier["unit_amount"] + tier.get("flat_amount", 0)
            if upper is None:
                break
            below = upper
        return total
    raise ValueError(f"unknown seat tier mode {mode!r}")


def price_subtotal(*, price: Price, seats: int | None = None, custom_amount: int | None = None) -> int:
    """What ``price`` comes to before discount and tax, in minor units of its currency.

    Raises InvalidInput with ``field`` ``amount`` (codes ``amount_required``,
    ``amount_out_of_range``, ``below_minimum_charge``, ``amount_not_chargeable``) or
    ``seats`` (``seats_out_of_range``, ``amount_too_large``).
    """
    if price.type == Price.Type.FIXED:
        return price.amount
    if price.type == Price.Type.FREE:
        return 0
    if price.type == Price.Type.CUSTOM:
        return _custom_subtotal(price, custom_amount)
    if price.type == Price.Type.SEAT_BASED:
        return _seat_subtotal(price, seats)
    raise ValueError(f"unknown price type {price.type!r}")


def _custom_subtotal(price: Price, custom_amount: int | None) -> int:
    amount = custom_amount if custom_amount is not None else price.preset_amount
    if amount is None:
        raise InvalidInput("Enter the amount you want to pay.", field="amount", code="amount_required")
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise InvalidInput("The amount must be a whole number of minor units.", field="amount")
    minimum = price.minimum_amount or 0
    maximum = price.maximum_amount
    if amount < minimum or (maximum is not None and amount > maximum):
        bounds = f"at least {minimum}" if maximum is None else f"between {minimum} and {maximum}"
        raise InvalidInput(
            f"The amount must be {bounds} (minor units of {price.currency}).",
            field="amount",
            code="amount_out_of_range",
        )
    if amount != 0:
        check_amount_chargeable(amount, price.currency, field="amount")
    return amount


def _seat_subtotal(price: Price, seats: int | None) -> int:
    if seats is None:
        seats = price.minimum_seats
    if isinstance(seats, bool) or not isinstance(seats, int):
        raise InvalidInput("Seats must be a whole number.", field="seats")
    minimum = max(price.minimum_seats or 1, 1)
    maximum = price.maximum_seats
    if seats < minimum or (maximum is not None and seats > maximum):
        bounds = f"at least {minimum}" if maximum is None else f"between {minimum} and {maximum}"
        raise InvalidInput(f"Seats must be {bounds}.", field="seats", code="seats_out_of_range")
    total = seat_tiers_total(price.seat_tiers, price.seat_tier_mode, seats)
    if total > MAX_AMOUNT:
        raise InvalidInput(
            "That many seats cost more than can be charged.", field="seats", code="amount_too_large"
        )
    return total


def discount_amount(*, discount: Discount, subtotal: int, currency: str) -> int:
    """The amount ``discount`` takes off ``subtotal``: never negative, never more than it.

    Percentages are rounded half-up by ``billing.money.percentage_of``. A fixed discount
    without an amount for ``currency`` raises InvalidInput(field="discount_code",
    code="discount_currency").
    """
    if subtotal <= 0:
        if discount.type == Discount.Type.FIXED:
            _fixed_amount(discount, currency)  # still refuse a currency it has no amount in
        return 0
    if discount.type == Discount.Type.PERCENTAGE:
        off = percentage_of(subtotal, discount.basis_points or 0)
    elif discount.type == Discount.Type.FIXED:
        off = _fixed_amount(discount, currency)
    else:
        raise ValueError(f"unknown discount type {discount.type!r}")
    return max(0, min(off, subtotal))


def _fixed_amount(discount: Discount, currency: str) -> int:
    amount = (discount.amounts or {}).get(currency.lower())
    if amount is None:
        raise InvalidInput(
            f"This discount cannot be used in {currency.lower()}.",
            field="discount_code",
            code="discount_currency",
        )
    return amount
