"""The processing queue of verified Stripe events: record once, process exactly once in effect.

An event is recorded by the webhook (``external_event_record``) and processed by a
Celery task (``external_event_process``) that routes it to its receiver. A failing
receiver leaves the event ``failed`` with the error, to be retried with backoff by
the sweeper; a lost task message is re-enqueued by the same sweeper.
"""

import logging
import traceback
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction

from billing.payments.models import ExternalEvent
from billing.payments.receivers import RECEIVERS, Handled
from core import clock
from core.audit import audit_record
from core.errors import Conflict, InvalidInput
from core.json_input import contains_nul
from core.retry import is_transient, retry_on_conflict

logger = logging.getLogger("recur.events")

STALE_PENDING_AFTER = timedelta(minutes=2)
MAX_BACKOFF = timedelta(hours=6)
SWEEP_BATCH = 500


def _enqueue(event_id: int) -> None:
    from billing.payments.tasks import process_external_event

    process_external_event.delay(event_id)


# Stripe's ids are short; the column holds 255. Event types are at most 100 characters here.
EVENT_ID_MAX = 255
EVENT_TYPE_MAX = 100
# `created` is Unix seconds: before year 10000, or the datetime cannot hold it.
CREATED_MAX = 253_402_300_799


def event_payload_problem(payload) -> str | None:
    """Why a verified payload cannot be an event (then it is rejected, never retried), or None."""
    if not isinstance(payload, dict):
        return "the body is not a JSON object"
    event_id, event_type, created = payload.get("id"), payload.get("type"), payload.get("created")
    if not isinstance(event_id, str) or not 0 < len(event_id) <= EVENT_ID_MAX:
        return f"id must be a string of 1 to {EVENT_ID_MAX} characters"
    if not isinstance(event_type, str) or not 0 < len(event_type) <= EVENT_TYPE_MAX:
        return f"type must be a string of 1 to {EVENT_TYPE_MAX} characters"
    if isinstance(created, bool) or not isinstance(created, int) or not 0 <= created <= CREATED_MAX:
        return "created must be a Unix timestamp in seconds"
    if not isinstance(payload.get("livemode"), bool):
        return "livemode must be a boolean"
    data = payload.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        return "data.object must be an object"
    if contains_nul(payload):
        return "the event contains a NUL character"
    return None


def backoff(attempts: int) -> timedelta:
    """1, 2, 4, 8 ... minutes after the n-th failed attempt, at most six hours."""
    return min(timedelta(minutes=2 ** max(attempts - 1, 0)), MAX_BACKOFF)


@transaction.atomic
def external_event_record(*, payload: dict, delivery=None) -> tuple[ExternalEvent, bool]:
    """Store a verified event once (by its id) and enqueue its processing after commit."""
    problem = event_payload_problem(payload)
    if problem:
        raise InvalidInput(f"Malformed event: {problem}.", code="malformed_event")
    event_type = payload["type"]
    known = event_type in RECEIVERS
    defaults = {
        "type": event_type,
        "livemode": bool(payload.get("livemode")),
        "occurred_at": datetime.fromtimestamp(payload["created"], tz=UTC),
        "payload": payload,
        "delivery": delivery,
        "status": ExternalEvent.Status.PENDING if known else ExternalEvent.Status.IGNORED,
        "note": "" if known else "no receiver for this event type",
    }
    try:
        with transaction.atomic():
            event, created = ExternalEvent.objects.get_or_create(event_id=payload["id"], defaults=defaults)
    except IntegrityError:  # a concurrent delivery of the same event won the insert
        event, created = ExternalEvent.objects.get(event_id=payload["id"]), False
    if created and known:
        transaction.on_commit(lambda: _enqueue(event.pk))
    if not created:
        logger.info("duplicate delivery of %s %s", event.type, event.event_id)
    return event, created


@retry_on_conflict
def external_event_process(*, event_id: int) -> ExternalEvent | None:
    """Run the event's receiver once; safe to call any number of times, concurrently."""
    with transaction.atomic():
        event = ExternalEvent.objects.select_for_update(of=("self",), no_key=True).filter(pk=event_id).first()
        if event is None or event.status not in (ExternalEvent.Status.PENDING, ExternalEvent.Status.FAILED):
            return event
        receiver = RECEIVERS.get(event.type)
        event.attempts += 1
        try:
            with transaction.atomic():
                handled = receiver(event) if receiver else Handled.ignored("no receiver for this event type")
        except Exception as exc:
            if is_transient(exc):
                raise  # a lost race, not a failure: the whole transaction runs again
            logger.exception("processing %s %s failed", event.type, event.event_id)
            event.status = ExternalEvent.Status.FAILED
            event.error = "".join(traceback.format_exception(exc))[-10_000:]
            exhausted = event.attempts >= settings.RECUR_EVENT_MAX_ATTEMPTS
            event.next_attempt_at = None if exhausted else clock.now() + backoff(event.attempts)
        else:
            event.status = handled.status
            event.note = handled.note[:255]
            event.error = ""
            event.next_attempt_at = None
            event.processed_at = clock.now()
        event.save()
        return event


def external_events_sweep() -> int:
    """Re-enqueue events whose message was lost and failed events whose retry is due."""
    now = clock.now()
    stale = ExternalEvent.objects.filter(
        status=ExternalEvent.Status.PENDING, received_at__lt=now - STALE_PENDING_AFTER
    )
    due = ExternalEvent.objects.filter(status=ExternalEvent.Status.FAILED, next_attempt_at__lte=now)
    ids = list(stale.values_list("pk", flat=True)[:SWEEP_BATCH]) + list(
        due.values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    for event_id in ids:
        _enqueue(event_id)
    return len(ids)


@transaction.atomic
def external_event_replay(*, event: ExternalEvent, actor, reason: str = "") -> ExternalEvent:
    """Process an event again (its receiver is idempotent); audited."""
    event = ExternalEvent.objects.select_for_update(of=("self",), no_key=True).get(pk=event.pk)
    if event.type not in RECEIVERS:
        raise InvalidInput(
            "No receiver handles this event type; there is nothing to replay.", code="no_receiver"
        )
    previous = event.status
    event.status = ExternalEvent.Status.PENDING
    event.next_attempt_at = None
    event.save(update_fields=["status", "next_attempt_at"])
    audit_record(
        actor=actor, action="external_event.replay", target=event, reason=reason, data={"from": previous}
    )
    transaction.on_commit(lambda: _enqueue(event.pk))
    return event


@transaction.atomic
def external_event_ignore(*, event: ExternalEvent, actor, reason: str) -> ExternalEvent:
    """Stop retrying an event an operator judged harmless; audited."""
    if not reason.strip():
        raise InvalidInput("Say why the event is ignored.", field="reason", code="required")
    event = ExternalEvent.objects.select_for_update(of=("self",), no_key=True).get(pk=event.pk)
    if event.status in (ExternalEvent.Status.PROCESSED, ExternalEvent.Status.IGNORED):
        raise Conflict(f"The event is already {event.status}.", code="already_final")
    previous = event.status
    event.status = ExternalEvent.Status.IGNORED
    event.note = f"ignored by {getattr(actor, 'email', 'system')}: {reason}"[:255]
    event.next_attempt_at = None
    event.save(update_fields=["status", "note", "next_attempt_at"])
    audit_record(
        actor=actor, action="external_event.ignore", target=event, reason=reason, data={"from": previous}
    )
    return event
