"""What events exist, how their objects are represented, and who consumes them.

Apps fill these at start-up (``AppConfig.ready``): the app that owns an object registers its
event types and the serializer that represents it (the one its API's GET uses, so payloads
match the OpenAPI document); an app that reacts registers a consumer. The registry imports no
app: a lower app records an event without knowing who listens.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.db import models

ANY = "*"  # a consumer of every event type (webhook delivery)


@dataclass(frozen=True)
class EventType:
    name: str  # "order.paid"
    object_type: str  # "order"
    description: str


@dataclass(frozen=True)
class ObjectKind:
    name: str  # "order": the payload's object type and the event type's prefix
    model: type[models.Model]
    serializer: type  # a DRF serializer class
    # Loads the related rows the serializer reads, for many objects in one query set.
    prepare: Callable[[models.QuerySet], models.QuerySet] | None = None


@dataclass(frozen=True)
class Consumer:
    name: str
    types: frozenset[str]
    handle: Callable  # handle(event) -> None; runs inside the transaction that marks it done
    max_attempts: int = 12
    # handle_many(events) -> None: the same for a batch, in one transaction (optional).
    handle_many: Callable | None = None


@dataclass
class Registry:
    types: dict[str, EventType] = field(default_factory=dict)
    kinds: dict[str, ObjectKind] = field(default_factory=dict)
    kinds_by_model: dict[type, ObjectKind] = field(default_factory=dict)
    consumers: dict[str, Consumer] = field(default_factory=dict)

    def consumers_of(self, event_type: str) -> list[Consumer]:
        return [c for c in self.consumers.values() if ANY in c.types or event_type in c.types]


REGISTRY = Registry()


def register_object(
    name: str,
    *,
    model: type[models.Model],
    serializer: type,
    events: dict[str, str],
    prepare: Callable[[models.QuerySet], models.QuerySet] | None = None,
) -> None:
    """Declare an object kind and its event types: ``events`` maps the part after the dot
    ("paid") to a description. Registering again replaces (tests, autoreload)."""
    kind = ObjectKind(name=name, model=model, serializer=serializer, prepare=prepare)
    REGISTRY.kinds[name] = kind
    REGISTRY.kinds_by_model[model] = kind
    for action, description in events.items():
        full = f"{name}.{action}"
        REGISTRY.types[full] = EventType(name=full, object_type=name, description=description)


def register_consumer(
    name: str,
    *,
    types: Iterable[str],
    handle: Callable,
    max_attempts: int = 12,
    handle_many: Callable | None = None,
) -> None:
    """``handle(event)`` is called once per event of those types (at least once; it must be
    idempotent), inside a transaction that also marks the handling done. ``handle_many(events)``,
    when given, does the same for a batch of events (in id order) in one statement or few."""
    REGISTRY.consumers[name] = Consumer(
        name=name, types=frozenset(types), handle=handle, max_attempts=max_attempts, handle_many=handle_many
    )


def kind_of(obj: models.Model) -> ObjectKind:
    try:
        return REGISTRY.kinds_by_model[type(obj)]
    except KeyError:
        raise LookupError(f"{type(obj).__name__} is not registered as an event object") from None


def event_type(name: str) -> EventType:
    try:
        return REGISTRY.types[name]
    except KeyError:
        raise LookupError(f"unknown event type {name!r}") from None
