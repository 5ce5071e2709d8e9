"""Rules for products, prices and discounts, and the reservation of discount redemptions.

Prices are never edited in place: a changed price is archived and a new row takes its
place, so checkouts, orders and subscriptions keep pointing at what the customer agreed to.
A product that was sold (see ``selectors.product_is_sold``) keeps its recurring interval
and can only be archived, not deleted.

Errors carry the field in the API's notation (``prices[0].amount``), so the API reports
them as field errors and the backoffice shows them on its forms.
"""

import re
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import ProtectedError, RestrictedError
from django.db.models.functions import Lower

from accounts.models import Customer, Organization, User
from billing.catalog import selectors
from billing.catalog.models import Discount, DiscountRedemption, Price, Product, RecurringInterval
from billing.catalog.pricing import check_amount_chargeable, seat_tiers_total
from billing.money import CURRENCIES, LEDGER_AMOUNT_MAX, MAX_AMOUNT
from core import clock
from core.audit import audit_record, json_safe
from core.errors import Conflict, InvalidInput
from core.events.services import event_record, event_record_if_changed, event_snapshot
from core.ids import parse_uuid

# Stripe accepts at most 12 digits in an amount (the limit for high-denomination currencies).
MAX_PRICE_AMOUNT = LEDGER_AMOUNT_MAX
MAX_SEATS = 2_147_483_647  # PositiveIntegerField
MAX_SEAT_TIERS = 20
MAX_PRICES = 50
NAME_MAX = 200
DESCRIPTION_MAX = 10_000
METADATA_MAX_KEYS = 50
METADATA_KEY_MAX = 40
METADATA_VALUE_MAX = 500
# Stripe's cap on billing intervals: three years.
MAX_INTERVAL_COUNT = {
    RecurringInterval.DAY: 365,
    RecurringInterval.WEEK: 156,
    RecurringInterval.MONTH: 36,
    RecurringInterval.YEAR: 3,
}
MAX_DISCOUNT_MONTHS = 1200
MAX_REDEMPTIONS = 2_147_483_647
DISCOUNT_CODE_RE = re.compile(r"[A-Za-z0-9_-]{3,64}")

PRODUCT_FIELDS = ("name", "description", "recurring_interval", "recurring_interval_count", "metadata")
PRICE_FIELDS = (
    "currency",
    "type",
    "amount",
    "minimum_amount",
    "maximum_amount",
    "preset_amount",
    "seat_tiers",
    "seat_tier_mode",
    "minimum_seats",
    "maximum_seats",
)
TIER_FIELDS = ("up_to", "unit_amount", "flat_amount")
DISCOUNT_MUTABLE_FIELDS = (
    "name",
    "code",
    "starts_at",
    "ends_at",
    "max_redemptions",
    "max_redemptions_per_customer",
    "metadata",
    "product_ids",
)
DISCOUNT_IMMUTABLE_FIELDS = ("type", "basis_points", "amounts", "duration", "duration_in_months")


# --- shared checks -------------------------------------------------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _whole_number(
    value: Any, *, field: str, minimum: int = 0, maximum: int = MAX_PRICE_AMOUNT, required: bool = False
) -> int | None:
    if value is None:
        if required:
            raise InvalidInput("This field is required.", field=field, code="required")
        return None
    if not _is_int(value):
        raise InvalidInput("Must be a whole number.", field=field, code="invalid")
    if not minimum <= value <= maximum:
        raise InvalidInput(f"Must be between {minimum} and {maximum}.", field=field, code="out_of_range")
    return value


def _text(value: Any, *, field: str, max_length: int, required: bool = False) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidInput("Must be text.", field=field, code="invalid")
    value = value.strip()
    if required and not value:
        raise InvalidInput("This field is required.", field=field, code="required")
    if len(value) > max_length:
        raise InvalidInput(f"At most {max_length} characters.", field=field, code="max_length")
    return value


def _metadata(value: Any, *, field: str = "metadata") -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidInput("Metadata is an object of string keys and values.", field=field, code="invalid")
    if len(value) > METADATA_MAX_KEYS:
        raise InvalidInput(f"At most {METADATA_MAX_KEYS} keys.", field=field, code="too_many_keys")
    for key, item in value.items():
        if not isinstance(key, str) or not 1 <= len(key) <= METADATA_KEY_MAX:
            raise InvalidInput(
                f"Keys must be 1 to {METADATA_KEY_MAX} characters.", field=field, code="invalid_key"
            )
        if not isinstance(item, str) or len(item) > METADATA_VALUE_MAX:
            raise InvalidInput(
                f"Values must be text of at most {METADATA_VALUE_MAX} characters.",
                field=field,
                code="invalid_value",
            )
    return dict(value)


def _currency(value: Any, *, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("A currency is required, e.g. usd.", field=field, code="required")
    code = value.strip().lower()
    if len(code) != 3 or code not in CURRENCIES:
        raise InvalidInput(
            "Unsupported currency; use a lowercase ISO 4217 code.", field=field, code="unsupported_currency"
        )
    return code


def _aware(value: Any, *, field: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput("Must be a date and time with a timezone.", field=field, code="invalid")
    return value


def _audit(
    actor: User | None, action: str, target, organization: Organization, data: dict | None = None
) -> None:
    """Operators' changes are audited; an API client's are its merchant's own."""
    if actor is not None:
        audit_record(
            actor=actor, action=action, target=target, organization=organization, data=json_safe(data or {})
        )


# --- prices ----------------------------------------------------------------------------


def _seat_tiers(value: Any, *, field: str) -> list[dict[str, int | None]]:
    if not isinstance(value, list | tuple) or not value:
        raise InvalidInput("Seat-based prices need at least one tier.", field=field, code="required")
    if len(value) > MAX_SEAT_TIERS:
        raise InvalidInput(f"At most {MAX_SEAT_TIERS} tiers.", field=field, code="too_many_tiers")
    tiers: list[dict[str, int | None]] = []
    below = 0
    for i, tier in enumerate(value):
        at = f"{field}[{i}]"
        if not isinstance(tier, Mapping):
            raise InvalidInput("A tier is an object with up_to, unit_amount and flat_amount.", field=at)
        unknown = sorted(str(k) for k in set(tier) - set(TIER_FIELDS))
        if unknown:
            raise InvalidInput(
                "Tiers have only up_to, unit_amount and flat_amount.", field=at, code="unknown_field"
            )
        last = i == len(value) - 1
        up_to = tier.get("up_to")
        if last:
            if up_to is not None:
                raise InvalidInput(
                    "The last tier has up_to null: it covers every seat above the others.",
                    field=f"{at}.up_to",
                    code="last_tier_not_open",
                )
        else:
            up_to = _whole_number(up_to, field=f"{at}.up_to", minimum=1, maximum=MAX_SEATS, required=True)
            if up_to <= below:
                raise InvalidInput(
                    "Tiers must be in ascending order of up_to.",
                    field=f"{at}.up_to",
                    code="tiers_not_ascending",
                )
            below = up_to
        tiers.append(
            {
                "up_to": up_to,
                "unit_amount": _whole_number(
                    tier.get("unit_amount"), field=f"{at}.unit_amount", required=True
                ),
                "flat_amount": _whole_number(tier.get("flat_amount", 0), field=f"{at}.flat_amount") or 0,
            }
        )
    return tiers


def _price_values(data: Mapping[str, Any], *, field: str) -> dict[str, Any]:
    """The validated column values of a price described by ``data`` (API notation)."""
    if not isinstance(data, Mapping):
        raise InvalidInput("A price is an object.", field=field)
    unknown = sorted(str(k) for k in set(data) - {*PRICE_FIELDS, "id"})
    if unknown:
        raise InvalidInput(
            f"Unknown price field {unknown[0]!r}.", field=f"{field}.{unknown[0]}", code="unknown_field"
        )
    currency = _currency(data.get("currency"), field=f"{field}.currency")
    price_type = data.get("type")
    if price_type not in Price.Type.values:
        raise InvalidInput(
            f"The type is one of {', '.join(Price.Type.values)}.",
            field=f"{field}.type",
            code="invalid_choice",
        )
    values: dict[str, Any] = {
        "currency": currency,
        "type": price_type,
        "amount": None,
        "minimum_amount": None,
        "maximum_amount": None,
        "preset_amount": None,
        "seat_tiers": [],
        "seat_tier_mode": "",
        "minimum_seats": 1,
        "maximum_seats": None,
    }
    used: set[str] = {"currency", "type"}

    def amount(key: str, *, required: bool = False, minimum: int = 0) -> int | None:
        used.add(key)
        return _whole_number(data.get(key), field=f"{field}.{key}", required=required, minimum=minimum)

    if price_type == Price.Type.FIXED:
        values["amount"] = amount("amount", required=True, minimum=1)
        check_amount_chargeable(values["amount"], currency, field=f"{field}.amount")
    elif price_type == Price.Type.CUSTOM:
        minimum = amount("minimum_amount", required=True)
        maximum = amount("maximum_amount")
        preset = amount("preset_amount")
        if minimum:
            check_amount_chargeable(minimum, currency, field=f"{field}.minimum_amount")
        if maximum is not None:
            if maximum < minimum:
                raise InvalidInput(
                    "The maximum must be at least the minimum.",
                    field=f"{field}.maximum_amount",
                    code="maximum_below_minimum",
                )
            if maximum:
                check_amount_chargeable(maximum, currency, field=f"{field}.maximum_amount")
        if preset is not None:
            if preset < minimum or (maximum is not None and preset > maximum):
                raise InvalidInput(
                    "The preset amount must be between the minimum and the maximum.",
                    field=f"{field}.preset_amount",
                    code="amount_out_of_range",
                )
            if preset:
                check_amount_chargeable(preset, currency, field=f"{field}.preset_amount")
        values.update(minimum_amount=minimum, maximum_amount=maximum, preset_amount=preset)
    elif price_type == Price.Type.SEAT_BASED:
        used.update({"seat_tiers", "seat_tier_mode", "minimum_seats", "maximum_seats"})
        tiers = _seat_tiers(data.get("seat_tiers"), field=f"{field}.seat_tiers")
        mode = data.get("seat_tier_mode")
        if mode not in Price.TierMode.values:
            raise InvalidInput(
                "The seat tier mode is volume or graduated.",
                field=f"{field}.seat_tier_mode",
                code="invalid_choice",
            )
        minimum_seats = _whole_number(
            data.get("minimum_seats", 1), field=f"{field}.minimum_seats", minimum=1, maximum=MAX_SEATS
        )
        maximum_seats = _whole_number(
            data.get("maximum_seats"), field=f"{field}.maximum_seats", minimum=1, maximum=MAX_SEATS
        )
        minimum_seats = minimum_seats or 1
        if maximum_seats is not None and maximum_seats < minimum_seats:
            raise InvalidInput(
                "The maximum number of seats must be at least the minimum.",
                field=f"{field}.maximum_seats",
                code="maximum_below_minimum",
            )
        if maximum_seats is not None and seat_tiers_total(tiers, mode, maximum_seats) > MAX_AMOUNT:
            raise InvalidInput(
                "The maximum number of seats would cost more than can be charged.",
                field=f"{field}.maximum_seats",
                code="amount_too_large",
            )
        values.update(
            seat_tiers=tiers, seat_tier_mode=mode, minimum_seats=minimum_seats, maximum_seats=maximum_seats
        )

    # Fields of other price types must be absent (or empty), not silently dropped.
    empty = (None, "", [], {})
    for key in PRICE_FIELDS:
        if key in used or data.get(key, None) in empty:
            continue
        if key == "minimum_seats" and data.get(key) == 1:
            continue
        raise InvalidInput(f"A {price_type} price has no {key}.", field=f"{field}.{key}", code="not_allowed")
    return values


def _same_price(price: Price, values: Mapping[str, Any]) -> bool:
    return all(getattr(price, key) == value for key, value in values.items())


def _price_as_data(price: Price) -> dict[str, Any]:
    return {key: getattr(price, key) for key in PRICE_FIELDS}


def _check_prices_list(prices: Any) -> list:
    if not isinstance(prices, list | tuple) or not prices:
        raise InvalidInput("A product needs at least one price.", field="prices", code="required")
    if len(prices) > MAX_PRICES:
        raise InvalidInput(f"At most {MAX_PRICES} prices.", field="prices", code="too_many_prices")
    return list(prices)


def _check_one_per_currency(currencies: list[str]) -> None:
    seen: set[str] = set()
    for index, currency in enumerate(currencies):
        if currency in seen:
            raise InvalidInput(
                f"Only one active price per currency: {currency} appears twice.",
                field=f"prices[{index}].currency",
                code="duplicate_currency",
            )
        seen.add(currency)


# --- products --------------------------------------------------------------------------


def _product_values(values: Mapping[str, Any]) -> dict[str, Any]:
    name = _text(values.get("name"), field="name", max_length=NAME_MAX, required=True)
    description = _text(values.get("description"), field="description", max_length=DESCRIPTION_MAX)
    interval = values.get("recurring_interval") or None
    if interval is not None and interval not in RecurringInterval.values:
        raise InvalidInput(
            f"The interval is one of {', '.join(RecurringInterval.values)}, or null for one-time products.",
            field="recurring_interval",
            code="invalid_choice",
        )
    count = values.get("recurring_interval_count")
    count = 1 if count is None else count
    if interval is None:
        if count != 1:
            raise InvalidInput(
                "One-time products have no interval count.",
                field="recurring_interval_count",
                code="not_allowed",
            )
    else:
        _whole_number(
            count,
            field="recurring_interval_count",
            minimum=1,
            maximum=MAX_INTERVAL_COUNT[interval],
            required=True,
        )
    return {
        "name": name,
        "description": description,
        "recurring_interval": interval,
        "recurring_interval_count": count,
        "metadata": _metadata(values.get("metadata")),
    }


@transaction.atomic
def product_create(
    *,
    organization: Organization,
    name: str,
    description: str = "",
    recurring_interval: str | None = None,
    recurring_interval_count: int = 1,
    metadata: dict[str, str] | None = None,
    prices: list[dict[str, Any]],
    actor: User | None = None,
) -> Product:
    """A product with its prices (at least one; at most one per currency)."""
    values = _product_values(
        {
            "name": name,
            "description": description,
            "recurring_interval": recurring_interval,
            "recurring_interval_count": recurring_interval_count,
            "metadata": metadata,
        }
    )
    entries = _check_prices_list(prices)
    price_values = []
    for index, entry in enumerate(entries):
        if isinstance(entry, Mapping) and entry.get("id") is not None:
            raise InvalidInput(
                "A new product's prices have no id.", field=f"prices[{index}].id", code="not_allowed"
            )
        price_values.append(_price_values(entry, field=f"prices[{index}]"))
    _check_one_per_currency([v["currency"] for v in price_values])

    product = Product.objects.create(organization=organization, **values)
    product.active_prices = Price.objects.bulk_create(
        [Price(organization=organization, product=product, **v) for v in price_values]
    )
    product.active_prices.sort(key=lambda p: p.currency)
    _audit(actor, "product.create", product, organization, {**values, "prices": price_values})
    event_record(type="product.created", obj=product)
    return product


def _replace_prices(product: Product, entries: list) -> dict[str, list[str]]:
    """Make ``entries`` the product's active prices. An entry with an ``id`` (and nothing
    else, or the same values) keeps that price; with other values it replaces it; an entry
    without ``id`` adds a price; active prices left out are archived."""
    current = {
        p.pk: p
        for p in Price.objects.select_for_update(of=("self",), no_key=True).filter(
            product=product, is_archived=False
        )
    }
    keep: dict[uuid.UUID, Price] = {}
    create: list[dict[str, Any]] = []
    currencies: list[str] = []
    for index, entry in enumerate(entries):
        field = f"prices[{index}]"
        if not isinstance(entry, Mapping):
            raise InvalidInput("A price is an object.", field=field)
        price_id = entry.get("id")
        if price_id is None:
            values = _price_values(entry, field=field)
            create.append(values)
            currencies.append(values["currency"])
            continue
        existing = current.get(parse_uuid(price_id))
        if existing is None:
            raise InvalidInput(
                "No active price of this product has this id.", field=f"{field}.id", code="unknown_price"
            )
        if existing.pk in keep or any(v.get("replaces") == existing.pk for v in create):
            raise InvalidInput("This price is listed twice.", field=f"{field}.id", code="duplicate_price")
        changes = {k: v for k, v in entry.items() if k != "id"}
        base = _price_as_data(existing)
        if changes.get("type", existing.type) != existing.type:
            base = {"currency": existing.currency}  # a new type starts from a clean slate
        merged = {k: v for k, v in {**base, **changes}.items() if v is not None or k in changes}
        values = _price_values(merged, field=field)
        currencies.append(values["currency"])
        if _same_price(existing, values):
            keep[existing.pk] = existing
        else:
            create.append({**values, "replaces": existing.pk})
    _check_one_per_currency(currencies)

    archived = [p for pk, p in current.items() if pk not in keep]
    if archived:
        Price.objects.filter(pk__in=[p.pk for p in archived]).update(is_archived=True, updated_at=clock.now())
    created = Price.objects.bulk_create(
        [
            Price(
                organization_id=product.organization_id,
                product=product,
                **{k: v for k, v in values.items() if k != "replaces"},
            )
            for values in create
        ]
    )
    return {
        "archived": [str(p.pk) for p in archived],
        "created": [str(p.pk) for p in created],
        "kept": [str(pk) for pk in keep],
    }


@transaction.atomic
def product_update(*, product: Product, actor: User | None = None, **changes: Any) -> Product:
    """Change name, description, metadata, the interval (until sold) or the prices (a
    list like ``product_create``'s; see ``_replace_prices``)."""
    unknown = sorted(set(changes) - {*PRODUCT_FIELDS, "prices"})
    if unknown:
        raise InvalidInput(f"Unknown product field {unknown[0]!r}.", field=unknown[0], code="unknown_field")
    product = Product.objects.select_for_update(of=("self",), no_key=True).get(pk=product.pk)
    shown = event_snapshot(obj=product)
    product.__dict__.pop("active_prices", None)  # the snapshot kept the prices; they may change
    before = {field: getattr(product, field) for field in PRODUCT_FIELDS}
    wanted = {**before, **{k: v for k, v in changes.items() if k in PRODUCT_FIELDS}}
    if "recurring_interval" in changes and "recurring_interval_count" not in changes:
        wanted["recurring_interval_count"] = 1  # a new interval starts from "every 1 ..."
    values = _product_values(wanted)
    interval_changed = (values["recurring_interval"], values["recurring_interval_count"]) != (
        product.recurring_interval,
        product.recurring_interval_count,
    )
    if interval_changed and selectors.product_is_sold(product):
        raise Conflict(
            "This product has been sold: its billing interval can no longer change. "
            "Create a new product and archive this one.",
            field="recurring_interval" if "recurring_interval" in changes else "recurring_interval_count",
            code="product_sold",
        )
    for field, value in values.items():
        setattr(product, field, value)
    product.save()
    price_changes = None
    if "prices" in changes:
        price_changes = _replace_prices(product, _check_prices_list(changes["prices"]))
    _audit(
        actor,
        "product.update",
        product,
        product.organization,
        {
            "before": {k: v for k, v in before.items() if before[k] != values[k]},
            "after": {k: v for k, v in values.items() if before[k] != v},
            **({"prices": price_changes} if price_changes else {}),
        },
    )
    event_record_if_changed(type="product.updated", obj=product, before=shown)
    return product


def _set_product_archived(product: Product, archived: bool, actor: User | None) -> Product:
    product = Product.objects.select_for_update(of=("self",), no_key=True).get(pk=product.pk)
    if product.is_archived != archived:
        product.is_archived = archived
        product.save(update_fields=["is_archived", "updated_at"])
        _audit(actor, "product.archive" if archived else "product.unarchive", product, product.organization)
        event_record(type="product.updated", obj=product)
    return product


@transaction.atomic
def product_archive(*, product: Product, actor: User | None = None) -> Product:
    """Hide the product from new checkouts; existing subscriptions keep renewing. Idempotent."""
    return _set_product_archived(product, True, actor)


@transaction.atomic
def product_unarchive(*, product: Product, actor: User | None = None) -> Product:
    return _set_product_archived(product, False, actor)


@transaction.atomic
def product_delete(*, product: Product, actor: User | None = None) -> None:
    """Delete a product that was never sold (with its prices); a sold one is archived instead."""
    product = Product.objects.select_for_update(of=("self",), no_key=True).get(pk=product.pk)
    sold = Conflict(
        "This product has been sold and cannot be deleted; archive it instead.", code="product_sold"
    )
    if selectors.product_is_sold(product):
        raise sold
    if product.discounts.exists():
        raise Conflict(
            "Discounts are restricted to this product; remove it from them first, or archive the product.",
            code="product_has_discounts",
        )
    _audit(actor, "product.delete", product, product.organization, {"name": product.name})
    try:
        with transaction.atomic():
            Price.objects.filter(product=product).delete()
            Product.objects.filter(pk=product.pk).delete()
    except (ProtectedError, RestrictedError, IntegrityError) as exc:  # sold in the meantime
        raise sold from exc


# --- discounts -------------------------------------------------------------------------


def _discount_code(value: Any, *, organization: Organization, exclude: Discount | None = None) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not DISCOUNT_CODE_RE.fullmatch(value.strip()):
        raise InvalidInput(
            "A code is 3 to 64 letters, digits, dashes or underscores.", field="code", code="invalid_code"
        )
    code = value.strip()
    clash = (
        Discount.objects.filter(organization=organization)
        .annotate(code_lower=Lower("code"))
        .filter(code_lower=code.lower())
    )
    if exclude is not None:
        clash = clash.exclude(pk=exclude.pk)
    if clash.exists():
        raise InvalidInput("Another discount already uses this code.", field="code", code="unique")
    return code


def _discount_products(organization: Organization, product_ids: Any) -> list[Product]:
    if product_ids is None:
        return []
    if isinstance(product_ids, str | bytes) or not isinstance(product_ids, Iterable):
        raise InvalidInput("A list of product ids.", field="product_ids", code="invalid")
    ids = []
    for value in product_ids:
        if isinstance(value, Product):
            value = value.pk
        parsed = parse_uuid(value)
        if parsed is None:
            raise InvalidInput("Not a product id.", field="product_ids", code="unknown_product")
        ids.append(parsed)
    ids = list(dict.fromkeys(ids))
    products = list(Product.objects.filter(organization=organization, pk__in=ids))
    if len(products) != len(ids):
        raise InvalidInput("One of the products does not exist.", field="product_ids", code="unknown_product")
    return products


def _discount_window(starts_at: datetime | None, ends_at: datetime | None, *, ends_changed: bool) -> None:
    if starts_at is not None and ends_at is not None and ends_at <= starts_at:
        raise InvalidInput("The end must be after the start.", field="ends_at", code="ends_before_start")
    if ends_changed and ends_at is not None and ends_at <= clock.now():
        raise InvalidInput(
            "The end must be in the future; archive the discount to stop it now.",
            field="ends_at",
            code="ends_in_past",
        )


def _save_discount(discount: Discount) -> None:
    try:
        with transaction.atomic():
            discount.save()
    except IntegrityError as exc:  # a concurrent request took the code first
        raise InvalidInput("Another discount already uses this code.", field="code", code="unique") from exc


@transaction.atomic
def discount_create(
    *,
    organization: Organization,
    name: str,
    type: str,
    basis_points: int | None = None,
    amounts: dict[str, int] | None = None,
    duration: str = Discount.Duration.ONCE,
    duration_in_months: int | None = None,
    code: str | None = None,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
    max_redemptions: int | None = None,
    max_redemptions_per_customer: int | None = None,
    product_ids: Iterable[Any] = (),
    metadata: dict[str, str] | None = None,
    actor: User | None = None,
) -> Discount:
    """A percentage (basis points, 10000 = 100%) or fixed (per currency) discount."""
    name = _text(name, field="name", max_length=NAME_MAX, required=True)
    if type not in Discount.Type.values:
        raise InvalidInput("The type is percentage or fixed.", field="type", code="invalid_choice")
    if type == Discount.Type.PERCENTAGE:
        basis_points = _whole_number(
            basis_points, field="basis_points", minimum=1, maximum=10_000, required=True
        )
        if amounts:
            raise InvalidInput("A percentage discount has no amounts.", field="amounts", code="not_allowed")
        amounts = {}
    else:
        if basis_points is not None:
            raise InvalidInput(
                "A fixed discount has no basis_points.", field="basis_points", code="not_allowed"
            )
        amounts = _discount_amounts(amounts)
    if duration not in Discount.Duration.values:
        raise InvalidInput(
            "The duration is once, repeating or forever.", field="duration", code="invalid_choice"
        )
    if duration == Discount.Duration.REPEATING:
        duration_in_months = _whole_number(
            duration_in_months,
            field="duration_in_months",
            minimum=1,
            maximum=MAX_DISCOUNT_MONTHS,
            required=True,
        )
    elif duration_in_months is not None:
        raise InvalidInput(
            "Only a repeating discount has a number of months.",
            field="duration_in_months",
            code="not_allowed",
        )
    code = _discount_code(code, organization=organization)
    starts_at = _aware(starts_at, field="starts_at")
    ends_at = _aware(ends_at, field="ends_at")
    _discount_window(starts_at, ends_at, ends_changed=True)
    max_redemptions = _whole_number(
        max_redemptions, field="max_redemptions", minimum=1, maximum=MAX_REDEMPTIONS
    )
    max_redemptions_per_customer = _whole_number(
        max_redemptions_per_customer, field="max_redemptions_per_customer", minimum=1, maximum=MAX_REDEMPTIONS
    )
    products = _discount_products(organization, product_ids)
    discount = Discount(
        organization=organization,
        name=name,
        code=code,
        type=type,
        basis_points=basis_points,
        amounts=amounts,
        duration=duration,
        duration_in_months=duration_in_months,
        starts_at=starts_at,
        ends_at=ends_at,
        max_redemptions=max_redemptions,
        max_redemptions_per_customer=max_redemptions_per_customer,
        metadata=_metadata(metadata),
    )
    _save_discount(discount)
    if products:
        discount.products.set(products)
    _audit(
        actor,
        "discount.create",
        discount,
        organization,
        {"code": code, "type": type, "basis_points": basis_points, "amounts": amounts, "duration": duration},
    )
    event_record(type="discount.created", obj=discount)
    return discount


def _discount_amounts(amounts: Any) -> dict[str, int]:
    if not isinstance(amounts, Mapping) or not amounts:
        raise InvalidInput(
            'A fixed discount needs an amount per currency, e.g. {"usd": 500}.',
            field="amounts",
            code="required",
        )
    if len(amounts) > MAX_PRICES:
        raise InvalidInput(f"At most {MAX_PRICES} currencies.", field="amounts", code="too_many_currencies")
    cleaned: dict[str, int] = {}
    for key, value in amounts.items():
        currency = _currency(key, field="amounts")
        if currency in cleaned:
            raise InvalidInput(f"{currency} appears twice.", field="amounts", code="duplicate_currency")
        cleaned[currency] = _whole_number(value, field=f"amounts.{currency}", minimum=1, required=True)
    return cleaned


@transaction.atomic
def discount_update(*, discount: Discount, actor: User | None = None, **changes: Any) -> Discount:
    """Change what does not alter what was promised: name, code, validity window, limits,
    metadata and product restriction. Amount, type and duration are fixed at creation."""
    for field in changes:
        if field in DISCOUNT_IMMUTABLE_FIELDS:
            raise InvalidInput(
                f"{field} cannot change once a discount exists; create a new discount.",
                field=field,
                code="immutable",
            )
        if field not in DISCOUNT_MUTABLE_FIELDS:
            raise InvalidInput(f"Unknown discount field {field!r}.", field=field, code="unknown_field")
    discount = Discount.objects.select_for_update(of=("self",), no_key=True).get(pk=discount.pk)
    shown = event_snapshot(obj=discount)
    organization = discount.organization
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}

    def assign(field: str, value: Any) -> None:
        if getattr(discount, field) != value:
            before[field], after[field] = getattr(discount, field), value
            setattr(discount, field, value)

    if "name" in changes:
        assign("name", _text(changes["name"], field="name", max_length=NAME_MAX, required=True))
    if "code" in changes:
        assign("code", _discount_code(changes["code"], organization=organization, exclude=discount))
    if "starts_at" in changes:
        assign("starts_at", _aware(changes["starts_at"], field="starts_at"))
    if "ends_at" in changes:
        assign("ends_at", _aware(changes["ends_at"], field="ends_at"))
    if "starts_at" in changes or "ends_at" in changes:
        _discount_window(discount.starts_at, discount.ends_at, ends_changed="ends_at" in after)
    if "max_redemptions" in changes:
        limit = _whole_number(
            changes["max_redemptions"], field="max_redemptions", minimum=1, maximum=MAX_REDEMPTIONS
        )
        used = selectors.discount_redemptions_count(discount)
        if limit is not None and limit < used:
            raise InvalidInput(
                f"This discount was already used {used} times; the limit cannot be lower.",
                field="max_redemptions",
                code="below_redemptions",
            )
        assign("max_redemptions", limit)
    if "max_redemptions_per_customer" in changes:
        assign(
            "max_redemptions_per_customer",
            _whole_number(
                changes["max_redemptions_per_customer"],
                field="max_redemptions_per_customer",
                minimum=1,
                maximum=MAX_REDEMPTIONS,
            ),
        )
    if "metadata" in changes:
        assign("metadata", _metadata(changes["metadata"]))
    _save_discount(discount)
    if "product_ids" in changes:
        products = _discount_products(organization, changes["product_ids"])
        old = sorted(str(pk) for pk in discount.products.values_list("pk", flat=True))
        new = sorted(str(p.pk) for p in products)
        if old != new:
            discount.products.set(products)
            before["product_ids"], after["product_ids"] = old, new
    if after:
        _audit(actor, "discount.update", discount, organization, {"before": before, "after": after})
        event_record_if_changed(type="discount.updated", obj=discount, before=shown)
    return discount


def _set_discount_archived(discount: Discount, archived: bool, actor: User | None) -> Discount:
    discount = Discount.objects.select_for_update(of=("self",), no_key=True).get(pk=discount.pk)
    if discount.is_archived != archived:
        discount.is_archived = archived
        discount.save(update_fields=["is_archived", "updated_at"])
        _audit(
            actor, "discount.archive" if archived else "discount.unarchive", discount, discount.organization
        )
        event_record(type="discount.updated", obj=discount)
    return discount


@transaction.atomic
def discount_archive(*, discount: Discount, actor: User | None = None) -> Discount:
    """No new redemptions; subscriptions that already carry it keep it. Idempotent."""
    return _set_discount_archived(discount, True, actor)


@transaction.atomic
def discount_unarchive(*, discount: Discount, actor: User | None = None) -> Discount:
    return _set_discount_archived(discount, False, actor)


@transaction.atomic
def discount_delete(*, discount: Discount, actor: User | None = None) -> None:
    """Delete a discount nobody has used; a used one is archived instead."""
    discount = Discount.objects.select_for_update(of=("self",), no_key=True).get(pk=discount.pk)
    if DiscountRedemption.objects.filter(discount=discount).exists():
        raise Conflict("This discount has been redeemed; archive it instead.", code="discount_redeemed")
    _audit(
        actor,
        "discount.delete",
        discount,
        discount.organization,
        {"code": discount.code, "name": discount.name},
    )
    try:
        with transaction.atomic():
            discount.products.clear()
            Discount.objects.filter(pk=discount.pk).delete()
    except (ProtectedError, RestrictedError, IntegrityError) as exc:
        raise Conflict(
            "A checkout, order or subscription uses this discount; archive it instead.",
            code="discount_in_use",
        ) from exc


# --- redemption --------------------------------------------------------------------------


def _discount_error(detail: str, code: str) -> InvalidInput:
    return InvalidInput(detail, field="discount_code", code=code)


def _check_discount_usable(
    discount: Discount,
    *,
    product: Product,
    currency: str,
    customer_email: str,
    at: datetime,
    checkout=None,
) -> None:
    """Raise why ``discount`` cannot be used for ``product`` in ``currency`` at ``at``."""
    if discount.is_archived:
        raise _discount_error("This discount code is no longer available.", "discount_archived")
    if discount.starts_at is not None and at < discount.starts_at:
        raise _discount_error("This discount code is not valid yet.", "discount_not_started")
    if discount.ends_at is not None and at >= discount.ends_at:
        raise _discount_error("This discount code has expired.", "discount_expired")
    if discount.products.exists() and not discount.products.filter(pk=product.pk).exists():
        raise _discount_error("This discount code does not apply to this product.", "discount_not_applicable")
    if discount.type == Discount.Type.FIXED and currency.lower() not in (discount.amounts or {}):
        raise _discount_error(
            f"This discount code cannot be used in {currency.lower()}.", "discount_currency"
        )
    _check_discount_limits(discount, customer_email=customer_email, checkout=checkout)


def _check_discount_limits(discount: Discount, *, customer_email: str, checkout=None) -> None:
    """Reserved and redeemed uses count; the asking checkout's own reservation does not."""
    if (
        discount.max_redemptions is not None
        and selectors.discount_redemptions_count(discount, exclude_checkout=checkout)
        >= discount.max_redemptions
    ):
        raise _discount_error("This discount code has been used up.", "discount_exhausted")
    if discount.max_redemptions_per_customer is not None and customer_email:
        used = selectors.discount_redemptions_count(
            discount, customer_email=customer_email, exclude_checkout=checkout
        )
        if used >= discount.max_redemptions_per_customer:
            raise _discount_error(
                "You have already used this discount code as many times as it allows.", "discount_exhausted"
            )


def discount_find_for_checkout(
    *,
    organization: Organization,
    code: str,
    product: Product,
    currency: str,
    customer_email: str,
    at: datetime,
    checkout=None,
) -> Discount:
    """The discount a customer typed ``code`` for (case-insensitive), if they may use it now.
    Nothing is reserved: ``discount_reserve`` does that (and checks the limits again).
    Pass the ``checkout`` asking, if it exists, so its own reservation is not counted."""
    normalized = code.strip().lower() if isinstance(code, str) else ""
    discount = None
    if DISCOUNT_CODE_RE.fullmatch(normalized):
        discount = (
            Discount.objects.filter(organization=organization)
            .annotate(code_lower=Lower("code"))
            .filter(code_lower=normalized)
            .first()
        )
    if discount is None:
        raise _discount_error("This discount code does not exist.", "discount_not_found")
    _check_discount_usable(
        discount, product=product, currency=currency, customer_email=customer_email, at=at, checkout=checkout
    )
    return discount


@transaction.atomic
def discount_reserve(*, discount: Discount, checkout, customer_email: str) -> DiscountRedemption:
    """Reserve one use of ``discount`` for ``checkout`` (called when it is confirmed, inside
    the checkout's transaction). The discount row is locked, so two checkouts racing for
    the last use are served one after the other and only one gets it. Idempotent per
    checkout; a checkout that switched discounts gives its old reservation back."""
    discount = Discount.objects.select_for_update(of=("self",), no_key=True).get(pk=discount.pk)
    existing = (
        DiscountRedemption.objects.select_for_update(of=("self",), no_key=True)
        .filter(checkout=checkout)
        .first()
    )
    if existing is not None:
        if existing.discount_id == discount.pk:
            return existing
        if existing.status == DiscountRedemption.Status.REDEEMED:
            raise Conflict(
                "This checkout already redeemed another discount.", code="discount_already_redeemed"
            )
        existing.delete()
    email = (customer_email or "").strip().lower()
    _check_discount_usable(
        discount, product=checkout.product, currency=checkout.currency, customer_email=email, at=clock.now()
    )
    return DiscountRedemption.objects.create(
        organization_id=discount.organization_id,
        discount=discount,
        checkout=checkout,
        customer_email=email,
        status=DiscountRedemption.Status.RESERVED,
    )


@transaction.atomic
def discount_release(*, checkout) -> bool:
    """Give back the use reserved for ``checkout`` (payment failed, checkout expired).
    Returns whether there was one. A redeemed use stays."""
    deleted, _ = DiscountRedemption.objects.filter(
        checkout=checkout, status=DiscountRedemption.Status.RESERVED
    ).delete()
    return bool(deleted)


@transaction.atomic
def discount_redeem(*, checkout, customer: Customer) -> DiscountRedemption | None:
    """Turn the checkout's reservation into a redemption by ``customer`` (the payment
    succeeded). Idempotent. If the reservation was released in the meantime (a late
    success), the redemption is recorded anyway: the customer paid the discounted price."""
    redemption = (
        DiscountRedemption.objects.select_for_update(of=("self",), no_key=True)
        .filter(checkout=checkout)
        .first()
    )
    if redemption is None:
        if checkout.discount_id is None:
            return None
        Discount.objects.select_for_update(of=("self",), no_key=True).filter(pk=checkout.discount_id).first()
        redemption = DiscountRedemption(
            organization_id=checkout.organization_id,
            discount_id=checkout.discount_id,
            checkout=checkout,
            customer_email=(checkout.customer_email or customer.email).lower(),
        )
    if redemption.status != DiscountRedemption.Status.REDEEMED or redemption.customer_id != customer.pk:
        redemption.status = DiscountRedemption.Status.REDEEMED
        redemption.customer = customer
        redemption.save()
    return redemption


@transaction.atomic
def discount_redeem_for_subscription(
    *, discount: Discount, customer: Customer, product: Product, currency: str
):
    """Redeem a discount applied to an existing subscription (no checkout): the same checks
    as at checkout, under the discount's row lock so limits hold under concurrency."""
    discount = Discount.objects.select_for_update(of=("self",), no_key=True).get(pk=discount.pk)
    _check_discount_usable(
        discount, product=product, currency=currency, customer_email=customer.email, at=clock.now()
    )
    return DiscountRedemption.objects.create(
        organization_id=discount.organization_id,
        discount=discount,
        customer=customer,
        customer_email=customer.email,
        status=DiscountRedemption.Status.REDEEMED,
    )
