"""An object's story for the backoffice: one list of events, newest first, gathered from
the apps that know a part of it.

Core holds the event type, the registry and the rendering (``templates/backoffice/timeline.html``,
``{% object_timeline obj %}`` in ``core/templatetags/backoffice_timeline.py``). Each app
registers, in its ``AppConfig.ready``, the sources it knows for a model, named by its label:

    @timelines.source("accounts.customer", kind="order", permission="orders.view_order", rank=3)
    def customer_orders(customer, limit, now): ...

so a page's owner never imports the apps above it (DESIGN.md §10). A source runs a bounded
number of queries whatever the history's size; ``rank`` orders events of the same instant
(higher first: the consequence above its cause).
"""

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.contrib.admin.utils import quote
from django.db import models
from django.urls import NoReverseMatch, reverse

from billing.money import format_amount
from core import clock

TIMELINE_LIMIT = 100


@dataclass(frozen=True)
class TimelineEvent:
    when: datetime
    kind: str  # the badge: "order", "subscription", "payment", "checkout", "refund" ...
    title: str
    detail: str = ""
    url: str | None = None
    tone: str = "muted"  # a core.backoffice.display badge tone
    actor: str = ""  # who did it: an operator's e-mail, "API token …", "customer …", "system (…)"


Builder = Callable[[models.Model, int, datetime], list[TimelineEvent]]


@dataclass(frozen=True)
class TimelineSource:
    model: str
    kind: str
    build: Builder
    permission: str | None = None
    rank: int = 0


class TimelineRegistry:
    def __init__(self) -> None:
        self._sources: dict[str, dict[str, TimelineSource]] = defaultdict(dict)

    def source(self, model: str, *, kind: str, permission: str | None = None, rank: int = 0):
        """Register ``build(obj, limit, now)`` as the ``kind`` events of ``model`` objects.
        Registering the same kind again replaces it (a reload, a test)."""

        def register(build: Builder) -> Builder:
            self._sources[model][kind] = TimelineSource(model, kind, build, permission, rank)
            return build

        return register

    def sources(self, model: str) -> list[TimelineSource]:
        return list(self._sources.get(model, {}).values())

    def build(self, obj: models.Model, *, limit: int = TIMELINE_LIMIT, user=None) -> list[TimelineEvent]:
        """The latest ``limit`` events of ``obj``, newest first. With ``user``, only the
        sources whose records that user may view."""
        now = clock.now()
        ranked: list[tuple[TimelineEvent, int]] = []
        for source in self.sources(obj._meta.label_lower):
            if user is not None and source.permission and not user.has_perm(source.permission):
                continue
            ranked += [(event, source.rank) for event in source.build(obj, limit, now)]
        ranked.sort(key=lambda pair: (pair[0].when, pair[1]), reverse=True)
        return [event for event, _ in ranked[:limit]]


timelines = TimelineRegistry()


def customer_timeline(customer, *, limit: int = TIMELINE_LIMIT, user=None) -> list[TimelineEvent]:
    """The customer's orders, subscriptions, payments and checkouts (the apps register them)."""
    return timelines.build(customer, limit=limit, user=user)


# --- shared wording ----------------------------------------------------------------------

_INTERVAL_NAMES = {"day": "day", "week": "week", "month": "month", "year": "year"}


def per_interval(amount: int, currency: str, interval: str | None, count: int = 1) -> str:
    """``$20.00 / month``, ``$50.00 / 3 months``; just the amount for a one-time product."""
    money = format_amount(amount, currency)
    if not interval:
        return money
    name = _INTERVAL_NAMES.get(interval, interval)
    return f"{money} / {name}" if count == 1 else f"{money} / {count} {name}s"


def signed_amount(amount: int, currency: str) -> str:
    """``+$40.00`` for a charge, ``-$10.00`` for a credit (a proration line)."""
    money = format_amount(abs(amount), currency)
    return f"-{money}" if amount < 0 else f"+{money}"


def tax_rate_label(bps: int) -> str:
    """2000 -> ``20%``, 825 -> ``8.25%``."""
    return f"{Decimal(bps).scaleb(-2).normalize():f}%"


def order_label(order) -> str:
    return order.invoice_number or f"#{str(order.pk)[:8]}"


def admin_change_url(app_label: str, model_name: str, pk) -> str | None:
    try:
        return reverse(f"admin:{app_label}_{model_name}_change", args=[quote(pk)])
    except NoReverseMatch:
        return None


def day(value: datetime) -> str:
    return value.strftime("%Y-%m-%d")


def minute(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC")
