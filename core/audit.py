"""The audit log. Services call ``audit_record`` inside their transaction.

``actor`` says who acted: an operator (a ``User``), an API token (any object with an
``audit_actor()`` method, such as ``accounts.AccessToken``), the customer
(``customer_actor``), or the system (``system_actor("renewals")``, or ``None``).
"""

import json
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from core.models import AuditEntry, actor_words

ActorKind = AuditEntry.ActorKind


@dataclass(frozen=True)
class Actor:
    """Who performed an action, as the audit log stores it."""

    kind: str  # an ActorKind
    label: str = ""  # the operator's e-mail, the token's name and prefix, the job's name
    user: Any = None  # the operator, when ``kind`` is ``user``

    def __str__(self) -> str:
        return actor_words(self.kind, self.label)


def system_actor(name: str = "") -> Actor:
    """A job or automatic reaction, named after what it is (``renewals``, ``dunning``)."""
    return Actor(ActorKind.SYSTEM, name)


def customer_actor(customer) -> Actor:
    return Actor(ActorKind.CUSTOMER, getattr(customer, "email", "") or "")


def as_actor(actor) -> Actor:
    """Any accepted ``actor=`` value as an ``Actor``; ``None`` is the system."""
    if actor is None:
        return system_actor()
    if isinstance(actor, Actor):
        return actor
    if isinstance(actor, get_user_model()):
        return Actor(ActorKind.USER, actor.email, actor if actor.pk else None)
    describe = getattr(actor, "audit_actor", None)
    if callable(describe):
        return describe()
    if getattr(actor, "email", None):
        return Actor(ActorKind.USER, actor.email)
    raise TypeError(f"Not an audit actor: {actor!r}")


def is_operator(actor) -> bool:
    """True for a signed-in operator (a saved user)."""
    return isinstance(actor, get_user_model()) and actor.pk is not None


def audit_record(
    *,
    actor,
    action: str,
    target: models.Model,
    organization=None,
    reason: str = "",
    data: dict[str, Any] | None = None,
) -> AuditEntry:
    who = as_actor(actor)
    return AuditEntry.objects.create(
        actor=who.user,
        actor_email=who.label if who.kind == ActorKind.USER else "",
        actor_kind=who.kind,
        actor_label=who.label[:200],
        organization=organization,
        action=action,
        object_type=target._meta.label_lower,
        object_id=str(target.pk),
        object_repr=str(target)[:200],
        reason=reason,
        data=data or {},
    )


def json_safe(data: dict[str, Any]) -> dict[str, Any]:
    """Audit data as plain JSON (dates, decimals and UUIDs as strings)."""
    return json.loads(json.dumps(data, cls=DjangoJSONEncoder))
