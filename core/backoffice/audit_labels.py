"""How the audit log shows an entry: the object as it is now (its current label and status,
not the ones written with the entry) and what happened, with amounts formatted.

``attach_targets(entries)`` loads the current objects of a page of entries with one query
per object type, so a list of 50 entries costs a handful of queries, not 50.
"""

from collections import defaultdict

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist, ValidationError

from billing.money import InvalidAmount, UnknownCurrency, format_amount
from core.models import AuditEntry

# Audit data keys that hold an amount in minor units of the entry's ``currency``.
MONEY_KEYS = (
    "amount",
    "card_amount",
    "wallet_amount",
    "tax_amount",
    "credit",
    "credit_tax",
    "fee",
    "platform_fee_fixed",
)
MISSING = object()


def attach_targets(entries: list[AuditEntry]) -> None:
    """Set ``entry.target`` to the object as stored now (None when it is gone)."""
    ids: dict[str, set[str]] = defaultdict(set)
    for entry in entries:
        ids[entry.object_type].add(entry.object_id)
    found: dict[tuple[str, str], object] = {}
    for object_type, pks in ids.items():
        try:
            model = apps.get_model(object_type)
        except (LookupError, ValueError):
            continue
        for obj in model._default_manager.filter(pk__in=_valid_keys(model, pks)):
            found[(object_type, str(obj.pk))] = obj
    for entry in entries:
        entry.target = found.get((entry.object_type, entry.object_id))


def _valid_keys(model, pks: set[str]) -> list:
    """The ids that can be keys of ``model`` (an id of another type simply finds nothing)."""
    keys = []
    for pk in pks:
        try:
            keys.append(model._meta.pk.to_python(pk))
        except (ValueError, ValidationError):
            continue
    return keys


def current_label(entry: AuditEntry) -> str:
    target = getattr(entry, "target", MISSING)
    if target is MISSING or target is None:
        return entry.object_repr or entry.object_id
    return str(target)[:200]


def current_status(entry: AuditEntry) -> str:
    """The object's status now (``partially refunded``), or "" for objects without one."""
    target = getattr(entry, "target", None)
    if target is None:
        return ""
    try:
        target._meta.get_field("status")
    except FieldDoesNotExist:
        return ""
    return str(target.get_status_display()).lower().replace("_", " ")


def data_summary(entry: AuditEntry) -> str:
    """The amounts of the entry's data, formatted: ``amount $12.50 · credit $3.00``."""
    data = entry.data if isinstance(entry.data, dict) else {}
    currency = data.get("currency") or getattr(getattr(entry, "target", None), "currency", "")
    parts = []
    for key in MONEY_KEYS:
        value = data.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and currency and value:
            try:
                parts.append(f"{key.replace('_', ' ')} {format_amount(value, currency)}")
            except (InvalidAmount, UnknownCurrency):
                parts.append(f"{key.replace('_', ' ')} {value} {currency}")
    return " · ".join(parts)
