"""Record domain events with the change that caused them, and run their consumers."""

import json
import logging
import random
import time
import traceback
from collections.abc import Iterable, Sequence
from datetime import timedelta

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction

from core import clock
from core.audit import audit_record
from core.debounce import debounce_prompt, debounce_started
from core.errors import InvalidInput
from core.events.models import Event, EventHandling
from core.events.registry import REGISTRY, event_type, kind_of
from core.faults import crash_point

logger = logging.getLogger("recur.events")

STALE_AFTER = timedelta(minutes=1)  # a pending row this old lost its message
SWEEP_BATCH = 500
TASK_BATCH = 100
DISPATCH_BATCH = 500  # events one dispatch claims at a time
DISPATCH_BUDGET = 5.0  # seconds a dispatcher works before handing over to a fresh task
DISPATCH_QUEUED_KEY = "events:dispatch-queued"
DISPATCH_FLAG_SECONDS = 5
HANDLE_BATCH = 500  # events one consumer takes in one transaction
MAX_BACKOFF = timedelta(hours=6)


def _json(data) -> dict:
    return json.loads(json.dumps(data, cls=DjangoJSONEncoder))


def _require_transaction() -> None:
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("record events inside the transaction of the change they describe")


def _dispatch_after_commit(ids: list[int]) -> None:
    if ids:
        transaction.on_commit(dispatch_prompt, robust=True)


def dispatch_prompt() -> None:
    """Enqueue the dispatcher, debounced (``core.debounce``): it takes every undispatched
    event when it starts, so a hundred commits a second make a few tasks of many events
    each, not a hundred tasks of one. A prompt the flag swallows schedules a trailing run, so
    a flag left behind (a lost message, a dispatcher that cleared it in another cache) delays
    events by one window at most; the sweeper still covers lost messages."""
    from core.events.tasks import dispatch_events  # tasks import this module

    debounce_prompt(key=DISPATCH_QUEUED_KEY, task=dispatch_events, window=DISPATCH_FLAG_SECONDS)


def event_record(*, type: str, obj: models.Model, organization=None, data: dict | None = None) -> Event:
    """Record that ``type`` happened to ``obj``, in the caller's transaction. ``data`` is the
    object's representation; by default its registered serializer's (the API's GET)."""
    _require_transaction()
    spec = event_type(type)
    kind = REGISTRY.kinds.get(spec.object_type)
    if kind is None or not isinstance(obj, kind.model):
        raise LookupError(f"{type} is an event of {spec.object_type}, not of {obj.__class__.__name__}")
    event = Event.objects.create(
        organization=organization or obj.organization,
        type=type,
        object_type=kind.name,
        object_id=str(obj.pk),
        data=_json(data if data is not None else kind.serializer(obj).data),
        occurred_at=clock.now(),
    )
    _dispatch_after_commit([event.pk])
    return event


# Fields that change on every save and say nothing to an integrator by themselves.
VOLATILE_FIELDS = frozenset({"updated_at"})


def event_snapshot(*, obj: models.Model) -> dict:
    """The object as its events carry it (its registered serializer, the API's GET): taken
    before a change, it lets ``event_record_if_changed`` tell a real change from a no-op save."""
    return _json(kind_of(obj).serializer(obj).data)


def _visible(data: dict) -> dict:
    return {key: value for key, value in data.items() if key not in VOLATILE_FIELDS}


def event_record_if_changed(*, type: str, obj: models.Model, before: dict) -> Event | None:
    """Record ``type`` (an "updated"-like event) only when what an integrator sees of ``obj``
    differs from ``before`` (an ``event_snapshot``), in the caller's transaction."""
    after = event_snapshot(obj=obj)
    if _visible(after) == _visible(before):
        return None
    return event_record(type=type, obj=obj, data=after)


def events_record_bulk(
    *,
    type: str,
    objects: Iterable[models.Model] | models.QuerySet,
    payloads: Sequence[dict] | None = None,
) -> list[Event]:
    """One event of ``type`` per object, serialized together and inserted in one statement
    (the renewal path). A query set is first given its kind's ``prepare`` (related rows).
    ``payloads`` (JSON-ready, one per object) are representations the caller built itself,
    equal to the registered serializer's (``core.api.representation``)."""
    _require_transaction()
    spec = event_type(type)
    kind = REGISTRY.kinds[spec.object_type]
    if isinstance(objects, models.QuerySet) and kind.prepare and payloads is None:
        objects = kind.prepare(objects)
    objects = list(objects)
    if not objects:
        return []
    if payloads is None:
        payloads = _json(kind.serializer(objects, many=True).data)
    now = clock.now()
    events = [
        Event(
            organization_id=obj.organization_id,
            type=type,
            object_type=kind.name,
            object_id=str(obj.pk),
            data=data,
            occurred_at=now,
        )
        for obj, data in zip(objects, payloads, strict=True)
    ]
    _copy_events(events)
    _dispatch_after_commit([e.pk for e in events])
    return events


def _copy_events(events: list[Event]) -> None:
    """Insert with COPY, ids drawn from the table's sequence first (in order, so they order
    the events as listed): Django's multi-row INSERT adapted each JSON payload on its own and
    cost renewals more than the orders they describe."""
    with transaction.get_connection().cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence('events_event', 'id')) FROM generate_series(1, %s)",
            [len(events)],
        )
        ids = sorted(row[0] for row in cursor.fetchall())
        with cursor.connection.cursor().copy(
            "COPY events_event (id, uuid, organization_id, type, object_type, object_id, data, occurred_at)"
            " FROM STDIN"
        ) as copy:
            for event, pk in zip(events, ids, strict=True):
                event.pk = pk
                copy.write_row(
                    [
                        pk,
                        event.uuid,
                        event.organization_id,
                        event.type,
                        event.object_type,
                        event.object_id,
                        json.dumps(event.data, cls=DjangoJSONEncoder),
                        event.occurred_at,
                    ]
                )
    for event in events:
        event._state.adding = False


def event_envelope(event: Event) -> dict:
    """The event as integrators see it (webhook bodies, the events API)."""
    return {
        "id": event.public_id,
        "type": event.type,
        "created_at": event.occurred_at.isoformat().replace("+00:00", "Z"),
        "organization_id": str(event.organization_id),
        "data": event.data,
    }


# --- running consumers ---------------------------------------------------------------------


def _dispatch(event_ids: Sequence[int] | None) -> tuple[int, list[int]]:
    """Write the handlings of events not yet dispatched (one per consumer of its type) and
    mark them dispatched; returns how many it claimed and the new handlings' ids, in event
    order. ``None`` takes the oldest undispatched events, up to ``DISPATCH_BATCH``."""
    with transaction.atomic():
        undispatched = Event.objects.filter(dispatched_at__isnull=True)
        if event_ids is not None:
            undispatched = undispatched.filter(pk__in=event_ids)
        events = list(
            undispatched.select_for_update(skip_locked=True)
            .only("pk", "type")
            .order_by("pk")[:DISPATCH_BATCH]
        )
        if not events:
            return 0, []
        now = clock.now()
        rows = [
            EventHandling(event_id=e.pk, consumer=c.name, created_at=now)
            for e in events
            for c in REGISTRY.consumers_of(e.type)
        ]
        EventHandling.objects.bulk_create(rows, ignore_conflicts=True)
        Event.objects.filter(pk__in=[e.pk for e in events]).update(dispatched_at=now)
    return len(events), list(
        EventHandling.objects.filter(event_id__in=[e.pk for e in events], status=EventHandling.Status.PENDING)
        .order_by("event_id", "pk")
        .values_list("pk", flat=True)
    )


def events_dispatch(*, event_ids: Sequence[int] | None) -> list[int]:
    """``_dispatch`` for callers that want only the handlings."""
    return _dispatch(event_ids)[1]


def _retry_delay(attempts: int) -> timedelta:
    base = min(MAX_BACKOFF.total_seconds(), 10 * 2 ** (attempts - 1))
    return timedelta(seconds=base * random.uniform(0.8, 1.2))


def event_handle(*, handling_id: int) -> bool:
    """Run one consumer on one event unless done or being run; True when it ran and succeeded."""
    try:
        with transaction.atomic():
            handling = (
                EventHandling.objects.select_for_update(skip_locked=True)
                .select_related("event")
                .exclude(status=EventHandling.Status.DONE)
                .filter(pk=handling_id)
                .first()
            )
            if handling is None:
                return False
            consumer = REGISTRY.consumers.get(handling.consumer)
            if consumer is None:
                raise LookupError(f"no consumer named {handling.consumer!r} is registered")
            consumer.handle(handling.event)
            crash_point("events.consumer_ran")  # before the done mark commits
            handling.status = EventHandling.Status.DONE
            handling.done_at = clock.now()
            handling.attempts += 1
            handling.error = ""
            handling.next_attempt_at = None
            handling.save(update_fields=["status", "done_at", "attempts", "error", "next_attempt_at"])
            return True
    except Exception as exc:
        _record_failure(handling_id, exc)
        return False


def _record_failure(handling_id: int, exc: Exception) -> None:
    with transaction.atomic():
        handling = EventHandling.objects.select_for_update().filter(pk=handling_id).first()
        if handling is None or handling.status == EventHandling.Status.DONE:
            return
        consumer = REGISTRY.consumers.get(handling.consumer)
        handling.attempts += 1
        handling.status = EventHandling.Status.FAILED
        handling.error = "".join(traceback.format_exception(exc))[-4000:]
        gives_up = consumer is None or handling.attempts >= consumer.max_attempts
        handling.next_attempt_at = None if gives_up else clock.now() + _retry_delay(handling.attempts)
        handling.save(update_fields=["attempts", "status", "error", "next_attempt_at"])
    logger.warning(
        "event consumer %s failed on event %s (attempt %s%s): %s",
        handling.consumer,
        handling.event_id,
        handling.attempts,
        ", giving up" if gives_up else "",
        exc,
    )


def _handle_batch(consumer_name: str, handling_ids: list[int]) -> int:
    """Run one consumer on many events in one transaction, marking them done together. Raises
    when the batch fails (the caller then runs each on its own, so a bad event fails alone)."""
    with transaction.atomic():
        rows = list(
            EventHandling.objects.select_for_update(of=("self",), skip_locked=True)
            .select_related("event")
            .exclude(status=EventHandling.Status.DONE)
            .filter(pk__in=handling_ids)
            .order_by("event_id")
        )
        if not rows:
            return 0
        consumer = REGISTRY.consumers[consumer_name]
        events = [row.event for row in rows]
        if consumer.handle_many is not None:
            consumer.handle_many(events)
        else:
            for event in events:
                consumer.handle(event)
        crash_point("events.consumer_ran")  # before the done marks commit
        EventHandling.objects.filter(pk__in=[row.pk for row in rows]).update(
            status=EventHandling.Status.DONE,
            done_at=clock.now(),
            attempts=models.F("attempts") + 1,
            error="",
            next_attempt_at=None,
        )
        return len(rows)


def _run_handlings(handling_ids: list[int]) -> int:
    by_consumer: dict[str, list[int]] = {}
    for handling_id, consumer in (
        EventHandling.objects.filter(pk__in=handling_ids)
        .order_by("event_id", "pk")
        .values_list("pk", "consumer")
    ):
        by_consumer.setdefault(consumer, []).append(handling_id)
    ran = 0
    for consumer, ids in by_consumer.items():
        for start in range(0, len(ids), HANDLE_BATCH):
            batch = ids[start : start + HANDLE_BATCH]
            if len(batch) > 1 and consumer in REGISTRY.consumers:
                try:
                    ran += _handle_batch(consumer, batch)
                    continue
                except Exception:
                    logger.info("event consumer %s failed on a batch; running it event by event", consumer)
            ran += sum(event_handle(handling_id=h) for h in batch)
    return ran


def events_process(*, event_ids: Sequence[int] | None) -> int:
    """The dispatcher (the after-commit task): dispatch events and run their consumers, each
    consumer taking them in batches of one transaction each; returns handlings run. Given no
    ids it takes every undispatched event, batch after batch, for ``DISPATCH_BUDGET`` seconds,
    then hands over to a fresh task."""
    if event_ids is not None:
        return _run_handlings(events_dispatch(event_ids=event_ids))
    debounce_started(key=DISPATCH_QUEUED_KEY)  # events committed from now on prompt a new dispatcher
    ran, started = 0, time.monotonic()
    while True:
        claimed, handling_ids = _dispatch(None)
        if not claimed:
            break
        ran += _run_handlings(handling_ids)
        if time.monotonic() - started > DISPATCH_BUDGET:
            dispatch_prompt()
            break
    return ran


def events_sweep() -> int:
    """Find the work a lost message or a killed worker left: events never dispatched,
    handlings still pending, failed handlings whose retry is due. Enqueues it in batches."""
    from core.events.tasks import dispatch_events, handle_events  # tasks import this module

    now = clock.now()
    stale = now - STALE_AFTER
    event_ids = list(
        Event.objects.filter(dispatched_at__isnull=True, occurred_at__lt=stale)
        .order_by("pk")
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    open_ids = list(
        EventHandling.objects.filter(
            models.Q(status=EventHandling.Status.PENDING, created_at__lt=stale)
            | models.Q(status=EventHandling.Status.FAILED, next_attempt_at__lte=now)
        )
        .order_by("event_id", "pk")
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    for i in range(0, len(event_ids), TASK_BATCH):
        dispatch_events.delay(event_ids[i : i + TASK_BATCH])
    for i in range(0, len(open_ids), TASK_BATCH):
        handle_events.delay(open_ids[i : i + TASK_BATCH])
    return len(event_ids) + len(open_ids)


@transaction.atomic
def event_handling_retry(*, handling: EventHandling, actor) -> EventHandling:
    """An operator asks a failed (or given-up) handling to run again now; audited."""
    handling = EventHandling.objects.select_for_update().get(pk=handling.pk)
    if handling.status == EventHandling.Status.DONE:
        raise InvalidInput("This handling already succeeded.", code="already_done")
    handling.status = EventHandling.Status.PENDING
    handling.next_attempt_at = None
    handling.save(update_fields=["status", "next_attempt_at"])
    audit_record(
        actor=actor,
        action="event_handling.retry",
        target=handling,
        data={"consumer": handling.consumer, "event": handling.event_id},
    )
    from core.events.tasks import handle_events  # tasks import this module

    transaction.on_commit(lambda: handle_events.delay([handling.pk]))
    return handling
