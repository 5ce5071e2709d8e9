"""The backoffice dashboard: a registry of cards.

Each app adds its own cards from its ``admin.py`` (admin autodiscovery imports it)::

    from core.backoffice.dashboard import Metric, dashboard

    @dashboard.card("mrr", title="MRR", order=10, permission="subscriptions.view_subscription")
    def mrr(request):
        return Metric(format_money(...), hint="Monthly recurring revenue", url=reverse(...))

A card registered with ``dashboard.placeholder(...)`` stands in until a real card with the
same key is registered, whatever the import order.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass

from django.http import HttpRequest

logger = logging.getLogger(__name__)

TONES = ("", "good", "warn", "bad")


@dataclass(frozen=True)
class CardItem:
    text: str
    url: str | None = None


@dataclass(frozen=True)
class Metric:
    """What a card provider returns: the big number (already formatted) and its context."""

    value: str
    hint: str = ""
    url: str | None = None
    tone: str = ""  # one of TONES: colours the value
    items: tuple[CardItem, ...] = ()  # a short list under the value (e.g. what is failing)


@dataclass(frozen=True)
class CardSpec:
    key: str
    title: str
    order: int
    provider: Callable[[HttpRequest], Metric] | None = None
    permission: str | None = None
    feature: str = ""  # for placeholders: the feature the card arrives with


@dataclass(frozen=True)
class Card:
    """A card as the template shows it."""

    key: str
    title: str
    value: str
    hint: str = ""
    url: str | None = None
    tone: str = ""
    placeholder: bool = False
    error: bool = False
    items: tuple[CardItem, ...] = ()


class Dashboard:
    def __init__(self) -> None:
        self._cards: dict[str, CardSpec] = {}
        self._placeholders: dict[str, CardSpec] = {}

    def card(
        self, key: str, *, title: str, order: int = 100, permission: str | None = None
    ) -> Callable[[Callable[[HttpRequest], Metric]], Callable[[HttpRequest], Metric]]:
        """Register ``provider(request) -> Metric`` as the card ``key`` (replacing any earlier one)."""

        def decorator(provider: Callable[[HttpRequest], Metric]) -> Callable[[HttpRequest], Metric]:
            self._cards[key] = CardSpec(
                key=key, title=title, order=order, provider=provider, permission=permission
            )
            return provider

        return decorator

    def placeholder(self, key: str, *, title: str, feature: str, order: int = 100) -> None:
        """A card that shows "—" until the feature that computes it registers a real card ``key``."""
        self._placeholders[key] = CardSpec(key=key, title=title, order=order, feature=feature)

    def unregister(self, key: str) -> None:
        self._cards.pop(key, None)
        self._placeholders.pop(key, None)

    def specs(self) -> list[CardSpec]:
        merged = {**self._placeholders, **self._cards}
        return sorted(merged.values(), key=lambda spec: (spec.order, spec.key))

    def cards(self, request: HttpRequest) -> list[Card]:
        """The cards this user may see, computed now. A failing provider shows an error card."""
        result = []
        for spec in self.specs():
            if spec.permission and not request.user.has_perm(spec.permission):
                continue
            if spec.provider is None:
                result.append(
                    Card(spec.key, spec.title, "—", hint=f"arrives with {spec.feature}", placeholder=True)
                )
                continue
            try:
                metric = spec.provider(request)
            except Exception:
                logger.exception("dashboard card %s failed", spec.key)
                result.append(Card(spec.key, spec.title, "error", hint="could not be computed", error=True))
                continue
            result.append(
                Card(
                    spec.key,
                    spec.title,
                    metric.value,
                    hint=metric.hint,
                    url=metric.url,
                    tone=metric.tone,
                    items=metric.items,
                )
            )
        return result


dashboard = Dashboard()
