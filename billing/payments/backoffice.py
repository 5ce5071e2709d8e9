"""What a payment is for, as backoffice links, without this app knowing orders or checkouts.

A payment names what it pays by ``reference`` (``order:<id>``, ``checkout:<id>``). The app
that owns a kind registers a resolver in ``PAID_FOR`` (from its admin module); pages ask
``paid_for(references)`` once per page, which costs one query per kind present, however many
rows the page shows. ``event_payments(events)`` finds the payments a page of Stripe events
concern in one query, from the ids their objects carry.
"""

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.db.models import Q
from django.utils.html import format_html
from django.utils.safestring import SafeString

from billing.payments.models import ExternalEvent, Payment


@dataclass(frozen=True)
class Link:
    label: str
    url: str | None = None

    def html(self) -> SafeString:
        if self.url:
            return format_html('<a href="{}">{}</a>', self.url, self.label)
        return format_html("{}", self.label)


@dataclass(frozen=True)
class PaidFor:
    """``what`` the reference names (an order by its invoice number, a checkout), and the
    order, product and subscription behind it when there are."""

    what: Link
    order: Link | None = None
    product: Link | None = None
    subscription: Link | None = None

    def links(self) -> list[tuple[str, Link]]:
        return [
            (name, link)
            for name, link in (
                ("order", self.order),
                ("product", self.product),
                ("subscription", self.subscription),
            )
            if link is not None
        ]


# kind ("order", "checkout") -> resolver: {id: PaidFor} for the given ids (one query).
PAID_FOR: dict[str, Callable[[list[uuid.UUID]], dict[uuid.UUID, PaidFor]]] = {}


def _uuid(raw: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None


def _split(reference: str) -> tuple[str, uuid.UUID | None]:
    kind, _, raw = reference.partition(":")
    return kind, _uuid(raw)


def paid_for(references: Iterable[str]) -> dict[str, PaidFor]:
    """What each reference pays for, by reference (missing: unknown kind or row)."""
    wanted: dict[str, dict[uuid.UUID, str]] = {}
    for reference in set(references):
        kind, pk = _split(reference)
        if pk is not None and kind in PAID_FOR:
            wanted.setdefault(kind, {})[pk] = reference
    found: dict[str, PaidFor] = {}
    for kind, refs in wanted.items():
        for pk, info in PAID_FOR[kind](list(refs)).items():
            found[refs[pk]] = info
    return found


def _object_ids(event: ExternalEvent) -> tuple[str, str, str]:
    """(PaymentIntent id, charge id, our payment id) an event's object carries."""
    obj = event.object
    kind = obj.get("object")
    intent = obj.get("id") if kind == "payment_intent" else obj.get("payment_intent")
    charge = obj.get("id") if kind == "charge" else obj.get("charge")
    metadata = obj.get("metadata") if kind in ("payment_intent", "charge") else None
    ours = (metadata or {}).get("recur_payment_id") if isinstance(metadata, dict) else None
    as_id = lambda value: value if isinstance(value, str) else ""  # noqa: E731  (expanded objects are dicts)
    return as_id(intent), as_id(charge), as_id(ours)


def event_payments(events: Iterable[ExternalEvent]) -> dict[int, Payment]:
    """The payment each event concerns (by event pk), found by our id, then the
    PaymentIntent, then the charge, as ``payment_match`` does; one query for all."""
    events = list(events)
    carried = {event.pk: _object_ids(event) for event in events}
    intents = {intent for intent, _, _ in carried.values() if intent}
    charges = {charge for _, charge, _ in carried.values() if charge}
    ours = {pk for _, _, raw in carried.values() if raw and (pk := _uuid(raw)) is not None}
    if not (intents or charges or ours):
        return {}
    payments = list(
        Payment.objects.filter(
            Q(pk__in=ours) | Q(processor_payment_id__in=intents) | Q(processor_charge_id__in=charges)
        )
        .select_related("customer")
        .order_by("created_at")
    )
    by_pk = {str(p.pk): p for p in payments}
    # A later attempt of the same intent (a retried confirmation) is the one that counts.
    by_intent = {p.processor_payment_id: p for p in payments if p.processor_payment_id}
    by_charge = {p.processor_charge_id: p for p in payments if p.processor_charge_id}
    found = {}
    for pk, (intent, charge, ours_id) in carried.items():
        payment = by_pk.get(ours_id) or by_intent.get(intent) or by_charge.get(charge)
        if payment is not None:
            found[pk] = payment
    return found
