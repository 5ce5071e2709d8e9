"""The benefit types: one strategy per type, registered by name.

A strategy is told to grant, revoke, cycle or update one grant and returns the grant's new
``properties`` (what it made, for the customer's state and for undoing it later). Each call
must be idempotent for the same grant: a call may be repeated after a crash, so a strategy
keys what it creates on the grant (``get_or_create(grant=...)``, an idempotent PUT).

A strategy that only writes our own rows runs inside the transaction that records the
result (``calls_out = False``). One that calls another service (GitHub) runs with the grant
claimed but unlocked, so no row lock is held across the network.

Errors: ``BenefitRetryableError`` (a timeout, a 5xx, a rate limit) retries with backoff;
``BenefitError`` stops and waits for an operator's retry, with the message on the grant.
"""

from dataclasses import dataclass
from typing import Any, ClassVar

from rest_framework import serializers


class BenefitError(Exception):
    """The grant cannot be done as things are (shown on the grant; an operator retries)."""


class BenefitRetryableError(BenefitError):
    """Worth trying again later (``retry_after`` seconds, when the other side said)."""

    def __init__(self, message: str, *, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class NoProperties(serializers.Serializer):
    pass


class BenefitStrategy:
    """The default does nothing and keeps the grant's properties: a type overrides what it needs."""

    type: ClassVar[str]
    label: ClassVar[str]
    description: ClassVar[str] = ""
    # Validates and normalizes Benefit.properties (API and backoffice use the same one).
    properties_serializer: ClassVar[type[serializers.Serializer]] = NoProperties
    calls_out: ClassVar[bool] = False

    def is_configured(self) -> tuple[bool, str]:
        """(False, why) when the platform lacks what this type needs (credentials)."""
        return True, ""

    def grant(self, *, grant, benefit) -> dict[str, Any]:
        return dict(grant.properties)

    def revoke(self, *, grant, benefit) -> dict[str, Any]:
        return dict(grant.properties)

    def cycle(self, *, grant, benefit) -> dict[str, Any]:
        return dict(grant.properties)

    def update(self, *, grant, benefit) -> dict[str, Any]:
        """The benefit's properties changed: bring this (granted) grant in line."""
        return dict(grant.properties)

    def prepare_customer_views(self, grants: list) -> None:
        """Called once with every grant of this type a customer's state shows, before
        ``customer_view`` on each (``grant.benefit`` is loaded): load here, in one query for
        all of them, what the views read from other tables, and keep it on the grants
        (``prefetch_related_objects(grants, "license_key")``), so the state costs the same
        number of queries whatever the number of grants. Default: nothing to load."""

    def customer_view(self, *, grant, benefit) -> dict[str, Any]:
        """What the customer's state shows of a granted grant (default: its properties).
        Read only what ``prepare_customer_views`` loaded: no query per grant."""
        return dict(grant.properties)


@dataclass
class StrategyRegistry:
    strategies: dict[str, BenefitStrategy]


REGISTRY = StrategyRegistry(strategies={})


def register_strategy(strategy: type[BenefitStrategy]) -> type[BenefitStrategy]:
    """Class decorator: ``@register_strategy`` on a BenefitStrategy subclass."""
    REGISTRY.strategies[strategy.type] = strategy()
    return strategy


def strategy_for(type_name: str) -> BenefitStrategy:
    try:
        return REGISTRY.strategies[type_name]
    except KeyError:
        raise LookupError(f"unknown benefit type {type_name!r}") from None


def benefit_types() -> list[str]:
    return sorted(REGISTRY.strategies)
