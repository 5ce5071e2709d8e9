"""The delivery engine: one row per (event, endpoint), sent concurrently, retried for ~3 days.

- The ``webhooks`` consumer of the outbox writes the deliveries of an event (database only)
  and, after commit, enqueues ``webhooks.send``.
- A sender claims due, eligible deliveries with ``FOR UPDATE SKIP LOCKED`` and leases them by
  moving ``next_attempt_at`` ahead; the transport's asyncio loop POSTs them (``transport``) and
  a recorder thread stores the attempts in bulk. A killed sender's leases run out and the sweep
  sends those deliveries again (at least once, with the same ``webhook-id``).
- Order: a delivery is eligible only when no earlier delivery of the same object to the same
  endpoint is still open (pending or failed), so one object's events arrive in order while other
  objects, and other endpoints, flow. At most ``RECUR_WEBHOOK_ENDPOINT_CONCURRENCY`` requests
  per endpoint are in flight at once, so a slow endpoint holds a few slots, never the sender.
"""

import asyncio
import json
import logging
import os
import queue
import random
import threading
import time
from collections import Counter
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connection, models, transaction

from billing.webhooks import transport
from billing.webhooks.models import WebhookDelivery, WebhookEndpoint
from billing.webhooks.signing import signed_headers
from core import clock
from core.debounce import debounce_prompt, debounce_started
from core.events.models import Event
from core.events.services import event_envelope
from core.faults import crash_point

logger = logging.getLogger("recur.webhooks")

TEST_EVENT = "webhook_endpoint.test"
# Waits after attempt 1, 2, ...: about three days in all, as Stripe retries; ±20 % jitter.
RETRY_SCHEDULE = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    *[timedelta(hours=10)] * 6,
)
MAX_ATTEMPTS = len(RETRY_SCHEDULE) + 1
PROMPT_RETRIES_WITHIN = timedelta(minutes=2)  # sooner retries get a delayed task, not the sweep
BATCH_WINDOW = 0.02  # seconds a sender waits for more answers to record them in one transaction
OPEN = (WebhookDelivery.Status.PENDING, WebhookDelivery.Status.FAILED)
RECORDER_IDLE_SECONDS = 2  # a recorder idle this long closes its database connection


def _setting(name: str, default):
    return getattr(settings, name, default)


def retry_delay(attempts: int) -> timedelta | None:
    """The wait after the ``attempts``-th failed attempt, or None when it was the last."""
    if attempts >= MAX_ATTEMPTS:
        return None
    base = RETRY_SCHEDULE[attempts - 1].total_seconds()
    return timedelta(seconds=base * random.uniform(0.8, 1.2))


SEND_QUEUED_KEY = "webhooks:send-queued"
SEND_FLAG_SECONDS = 5
RETRY_QUEUED_KEY = "webhooks:retry-queued"


def _once(key: str, seconds: float) -> bool:
    """True unless a task of this kind is already queued (the cache remembers it a few
    seconds); a cache error says True, since a task too many is harmless."""
    try:
        return bool(cache.add(key, 1, timeout=max(1, int(seconds) + 1)))
    except Exception:
        return True


def send_prompt() -> None:
    """Enqueue ``webhooks.send``, debounced (``core.debounce``): a burst of events makes one
    sender run, not one per event; a swallowed prompt schedules a trailing run, and the sweep
    covers a lost message."""
    from billing.webhooks.tasks import send_deliveries  # tasks import this module

    debounce_prompt(key=SEND_QUEUED_KEY, task=send_deliveries, window=SEND_FLAG_SECONDS)


def _send_after_commit() -> None:
    transaction.on_commit(send_prompt, robust=True)


# --- the consumer ---------------------------------------------------------------------------


def webhook_deliveries_create(*, event: Event) -> int:
    """The outbox consumer: one pending delivery per enabled endpoint of the event's
    organization subscribed to its type (a test event goes to its own endpoint only).
    Idempotent: a second run finds the rows and writes nothing."""
    endpoints = WebhookEndpoint.objects.filter(organization_id=event.organization_id, enabled=True)
    if event.type == TEST_EVENT:
        endpoints = endpoints.filter(pk=event.object_id)
    else:
        endpoints = endpoints.filter(
            models.Q(event_types__contains=[event.type]) | models.Q(event_types__contains=["*"])
        )
    ids = list(endpoints.exclude(deliveries__event_id=event.pk).values_list("pk", flat=True))
    if not ids:
        return 0
    now = clock.now()
    object_key = f"{event.object_type}:{event.object_id}"[:120]
    WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(
                organization_id=event.organization_id,
                endpoint_id=endpoint_id,
                event_id=event.pk,
                object_key=object_key,
                next_attempt_at=now,
                created_at=now,
            )
            for endpoint_id in ids
        ],
        ignore_conflicts=True,
    )
    _send_after_commit()
    return len(ids)


def _subscribed(endpoint: WebhookEndpoint, event: Event) -> bool:
    if event.type == TEST_EVENT:
        return str(endpoint.pk) == event.object_id
    return "*" in endpoint.event_types or event.type in endpoint.event_types


def webhook_deliveries_create_many(*, events: list[Event]) -> int:
    """The consumer for a batch of events (a dispatch's burst): the same rows as
    ``webhook_deliveries_create`` for each, with one read of the endpoints and one insert."""
    endpoints: dict[object, list[WebhookEndpoint]] = {}
    for endpoint in WebhookEndpoint.objects.filter(
        organization_id__in={e.organization_id for e in events}, enabled=True
    ).only("pk", "organization_id", "event_types"):
        endpoints.setdefault(endpoint.organization_id, []).append(endpoint)
    if not endpoints:
        return 0
    existing = set(
        WebhookDelivery.objects.filter(event_id__in=[e.pk for e in events]).values_list(
            "event_id", "endpoint_id"
        )
    )
    now = clock.now()
    rows = [
        WebhookDelivery(
            organization_id=event.organization_id,
            endpoint_id=endpoint.pk,
            event_id=event.pk,
            object_key=f"{event.object_type}:{event.object_id}"[:120],
            next_attempt_at=now,
            created_at=now,
        )
        for event in events
        for endpoint in endpoints.get(event.organization_id, ())
        if (event.pk, endpoint.pk) not in existing and _subscribed(endpoint, event)
    ]
    if rows:
        WebhookDelivery.objects.bulk_create(rows, ignore_conflicts=True, batch_size=1000)
        _send_after_commit()
    return len(rows)


# --- claiming -------------------------------------------------------------------------------

NO_JIT = "SET LOCAL jit = off;\n"
CLAIM_SQL = """
WITH busy(endpoint_id, n) AS (SELECT * FROM unnest(%(busy_ids)s::uuid[], %(busy_counts)s::int[])),
due_endpoints AS (
    SELECT e.id FROM webhooks_webhookendpoint e
    WHERE e.enabled AND (  -- one index probe per endpoint (a scalar subquery, as below)
        SELECT d.id FROM webhooks_webhookdelivery d
        WHERE d.endpoint_id = e.id AND d.status IN ('pending', 'failed') AND d.next_attempt_at <= %(now)s
        LIMIT 1
    ) IS NOT NULL
),
candidates AS (
    SELECT c.id, c.event_id, e.id AS endpoint_id
    FROM due_endpoints e
    LEFT JOIN busy b ON b.endpoint_id = e.id
    CROSS JOIN LATERAL (
        SELECT d.id, d.event_id FROM webhooks_webhookdelivery d
        WHERE d.endpoint_id = e.id
          AND d.status IN ('pending', 'failed')
          AND d.next_attempt_at <= %(now)s
          -- A scalar subquery, not NOT EXISTS: it stays a per-row index probe on
          -- (endpoint, object_key, event) whatever the planner thinks of a fresh backlog.
          AND (
              SELECT p.id FROM webhooks_webhookdelivery p
              WHERE p.endpoint_id = d.endpoint_id AND p.object_key = d.object_key
                AND p.event_id < d.event_id AND p.status IN ('pending', 'failed')
              LIMIT 1
          ) IS NULL
        ORDER BY d.next_attempt_at, d.id
        LIMIT greatest(%(per_endpoint)s - coalesce(b.n, 0), 0)
        FOR UPDATE OF d SKIP LOCKED
    ) c
    LIMIT %(limit)s
)
-- The event and the endpoint come back with the lease: a claim is the sender's only query.
UPDATE webhooks_webhookdelivery d SET next_attempt_at = %(lease)s
FROM candidates c
JOIN events_event ev ON ev.id = c.event_id
JOIN webhooks_webhookendpoint ep ON ep.id = c.endpoint_id
WHERE d.id = c.id
RETURNING d.id, d.endpoint_id, d.event_id, d.attempts,
    ev.uuid, ev.type, ev.occurred_at, ev.organization_id, ev.data,
    ep.url, ep.secret, ep.previous_secret, ep.previous_secret_expires_at
"""


def _json(data):
    """jsonb from a raw cursor: Django leaves it text (``JSONField`` parses it itself)."""
    return json.loads(data) if isinstance(data, str | bytes) else data


@dataclass(frozen=True)
class Target:
    """An endpoint as a claim saw it: where to send and what signs."""

    url: str
    secret: str
    previous_secret: str = ""
    previous_secret_expires_at: object = None

    def secrets(self, at) -> list[str]:
        keys = [self.secret]
        if self.previous_secret and self.previous_secret_expires_at and self.previous_secret_expires_at > at:
            keys.append(self.previous_secret)
        return keys


@dataclass(frozen=True)
class Claim:
    delivery_id: int
    endpoint_id: object
    event_id: int
    attempts: int
    event: Event | None = None  # unsaved, built from the claim's row (``data`` may be jsonb text)
    target: Target | None = None


def deliveries_claim(
    *, limit: int, busy: Counter | None = None, per_endpoint: int | None = None
) -> list[Claim]:
    """Lease up to ``limit`` due, eligible deliveries, at most ``per_endpoint`` (the endpoint
    concurrency by default) per endpoint counting ``busy`` (already claimed per endpoint)."""
    if limit <= 0:
        return []
    busy = {k: v for k, v in (busy or {}).items() if v > 0}
    now = clock.now()
    lease = now + timedelta(seconds=_setting("RECUR_WEBHOOK_CLAIM_LEASE_SECONDS", 120))
    with transaction.atomic(), connection.cursor() as cursor:
        # The planner's cost of the per-row probes passes jit_above_cost, and compiling the
        # plan took longer (50-70 ms) than running it; a claim is a few index probes. Sent
        # with the claim in one round trip (client-side binding), planned after it runs.
        cursor.execute(
            NO_JIT + CLAIM_SQL,
            {
                "busy_ids": [str(k) for k in busy],
                "busy_counts": list(busy.values()),
                "now": now,
                "lease": lease,
                "limit": limit,
                "per_endpoint": per_endpoint or _setting("RECUR_WEBHOOK_ENDPOINT_CONCURRENCY", 16),
            },
        )
        cursor.nextset()
        rows = cursor.fetchall()
    claims = [
        Claim(
            delivery_id,
            endpoint_id,
            event_id,
            attempts,
            Event(pk=event_id, uuid=uuid, type=type_, occurred_at=at, organization_id=org_id, data=data),
            Target(url, secret, previous, previous_expires),
        )
        for (delivery_id, endpoint_id, event_id, attempts, uuid, type_, at, org_id, data, url, secret, previous, previous_expires) in rows
    ]  # fmt: skip
    return sorted(claims, key=lambda c: c.delivery_id)


# --- sending --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    claim: Claim
    started_at: object
    result: transport.SendResult


@dataclass(frozen=True)
class Body:
    msg_id: str  # the event's public id: webhook-id
    text: str  # what is signed
    data: bytes  # what is sent


class Recorder:
    """Records outcomes on a thread (and database connection) of its own, so recording one
    batch overlaps claiming and sending the next instead of taking turns with them; it takes
    whatever has arrived since its last statement. One per process, kept between sender runs
    (a run of one delivery pays no thread or connection setup). Inside a caller's transaction
    (tests that wrap each in one) the sender records inline instead, on the caller's
    connection, which alone sees the rows."""

    def __init__(self):
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.error: BaseException | None = None
        self.unrecorded = 0
        self.idle = threading.Condition()
        self.thread = threading.Thread(target=self._run, name="webhook-recorder", daemon=True)
        self.thread.start()

    def put(self, outcomes: list[Outcome]) -> None:
        with self.idle:
            self.unrecorded += len(outcomes)
        self.queue.put(outcomes)

    def flush(self) -> None:
        """Wait until everything handed over is recorded; raise what recording raised (its
        deliveries' leases bring them back to the sweep)."""
        with self.idle:
            self.idle.wait_for(lambda: not self.unrecorded)
            error, self.error = self.error, None
        if error is not None:
            raise error

    def _run(self) -> None:
        while True:
            try:
                batch = list(self.queue.get(timeout=RECORDER_IDLE_SECONDS))
            except queue.Empty:
                connection.close()  # idle: hold no database connection (reopened on next use)
                continue
            while True:  # and whatever else is waiting: one statement for all of it
                try:
                    batch.extend(self.queue.get_nowait())
                except queue.Empty:
                    break
            try:
                connection.close_if_unusable_or_obsolete()
                attempts_record(outcomes=batch)
            except Exception as exc:
                logger.exception("webhook recorder: %s answers not recorded", len(batch))
                connection.close()  # the next batch starts on a fresh connection
                with self.idle:
                    self.error = exc
            with self.idle:
                self.unrecorded -= len(batch)
                self.idle.notify_all()


class InlineRecorder:
    """Records on the caller's connection, in its transaction."""

    unrecorded = 0

    def put(self, outcomes: list[Outcome]) -> None:
        attempts_record(outcomes=outcomes)

    def flush(self) -> None:
        return None


_recorder: tuple[int, Recorder] | None = None
_recorder_lock = threading.Lock()


def _recorder_for_this_process() -> Recorder | InlineRecorder:
    global _recorder
    if connection.in_atomic_block:
        return InlineRecorder()
    with _recorder_lock:
        if _recorder is None or _recorder[0] != os.getpid():
            _recorder = (os.getpid(), Recorder())
        return _recorder[1]


class Sender:
    """Claims and sends until nothing is left to claim or in flight (or the time budget ends).

    The requests run on the transport's loop, the recording on a ``Recorder``; this thread
    claims (one statement returns the deliveries, their events and endpoints) and submits.
    It claims up to twice what may be in flight, so the loop starts the next request of an
    endpoint the moment one ends, without waiting for this thread's next claim: gates on the
    loop hold each endpoint to ``RECUR_WEBHOOK_ENDPOINT_CONCURRENCY`` requests at once and the
    sender to ``concurrency``."""

    def __init__(self, *, concurrency: int | None = None, budget_seconds: float | None = None):
        self.concurrency = concurrency or _setting("RECUR_WEBHOOK_SENDER_CONCURRENCY", 128)
        self.per_endpoint = _setting("RECUR_WEBHOOK_ENDPOINT_CONCURRENCY", 16)
        self.budget = budget_seconds or _setting("RECUR_WEBHOOK_SENDER_BUDGET_SECONDS", 30)
        self.in_flight: dict[Future, Claim] = {}  # claimed and not answered: sending or waiting
        self.gates: dict[object, asyncio.Semaphore] = {}  # used on the loop only
        self.gate: asyncio.Semaphore | None = None
        self.busy: Counter = Counter()
        self.bodies: dict[int, Body] = {}  # event id -> its body, serialized once per run
        self.completed: queue.SimpleQueue = queue.SimpleQueue()
        self.sent = 0

    def _body(self, event: Event) -> Body:
        body = self.bodies.get(event.pk)
        if body is None:
            event.data = _json(event.data)  # parsed once per event, not once per endpoint
            text = json.dumps(event_envelope(event), separators=(",", ":"), ensure_ascii=False)
            body = self.bodies[event.pk] = Body(event.public_id, text, text.encode())
        return body

    async def _send_one(self, engine: transport.Transport, claim: Claim, body: Body) -> Outcome:
        """Wait for the endpoint's gate and the sender's, then sign (``webhook-timestamp`` is
        the attempt's) and POST; runs on the transport's loop."""
        if self.gate is None:
            self.gate = asyncio.Semaphore(self.concurrency)
        gate = self.gates.get(claim.endpoint_id)
        if gate is None:
            gate = self.gates[claim.endpoint_id] = asyncio.Semaphore(self.per_endpoint)
        async with gate, self.gate:
            started_at = clock.now()
            headers = signed_headers(
                msg_id=body.msg_id,
                timestamp=started_at,
                body=body.text,
                secrets_=claim.target.secrets(started_at),
            )
            result = await engine.post(url=claim.target.url, body=body.data, headers=headers)
        return Outcome(claim, started_at, result)

    def _submit(self, engine: transport.Transport, claims: list[Claim]) -> None:
        sends = [self._send_one(engine, claim, self._body(claim.event)) for claim in claims]
        for claim, future in zip(claims, engine.submit_many(sends), strict=True):
            self.in_flight[future] = claim
            self.busy[claim.endpoint_id] += 1
            future.add_done_callback(self.completed.put)

    def _collect(self, window: float) -> list[Outcome]:
        """The answers that came: waits up to a second for one, then ``window`` for more."""
        try:
            done = [self.completed.get(timeout=1.0)]
        except queue.Empty:
            return []
        until = time.monotonic() + window
        while len(done) < len(self.in_flight):
            try:
                done.append(self.completed.get(timeout=max(0.0, until - time.monotonic())))
            except queue.Empty:
                break
        outcomes = []
        for future in done:
            claim = self.in_flight.pop(future)
            self.busy[claim.endpoint_id] -= 1
            outcomes.append(future.result())
        return outcomes

    def _claim(self, room: int) -> list[Claim]:
        return deliveries_claim(limit=room, busy=self.busy, per_endpoint=2 * self.per_endpoint)

    def run(self) -> int:
        debounce_started(key=SEND_QUEUED_KEY)  # deliveries committed from now on prompt a new run
        engine = transport.transport()
        recorder = _recorder_for_this_process()
        # Off-thread recording needs no gathering window: the recorder batches what waits.
        window = BATCH_WINDOW if isinstance(recorder, InlineRecorder) else 0.0
        deadline = time.monotonic() + self.budget
        more, refill_at = False, 0
        try:
            while True:
                claims = []
                room = 2 * self.concurrency - len(self.in_flight)
                if time.monotonic() >= deadline:
                    more = more or bool(self.in_flight)
                elif len(self.in_flight) <= refill_at:
                    claims = self._claim(room)
                    if not claims and not self.in_flight and recorder.unrecorded:
                        # Recorded answers free their objects' next events: claim once more.
                        recorder.flush()
                        claims = self._claim(room)
                if claims:
                    self._submit(engine, claims)
                    # Claim again once half of what is claimed has been answered: the other half
                    # keeps the endpoints busy meanwhile, and fewer, larger claims cost less.
                    refill_at = len(self.in_flight) // 2
                if not self.in_flight:
                    break
                outcomes = self._collect(window)
                if outcomes:
                    recorder.put(outcomes)
                    self.sent += len(outcomes)
        finally:
            recorder.flush()  # a run ends with its answers stored
        if more:
            send_prompt()
        return self.sent


def webhook_deliveries_send(*, budget_seconds: float | None = None) -> int:
    """Send every due delivery (the ``webhooks.send`` task); returns attempts made."""
    return Sender(budget_seconds=budget_seconds).run()


# --- recording ------------------------------------------------------------------------------

RECORD_SQL = """
WITH v AS (
    SELECT * FROM unnest(
        %(ids)s::bigint[], %(statuses)s::varchar[], %(nexts)s::timestamptz[], %(delivered)s::timestamptz[],
        %(codes)s::int[], %(started)s::timestamptz[], %(durations)s::int[], %(excerpts)s::text[],
        %(errors)s::varchar[]
    ) AS v(id, status, next_attempt_at, delivered_at, status_code, started_at, duration_ms, excerpt, error)
),
moved AS (
    UPDATE webhooks_webhookdelivery d SET
        status = v.status,
        attempts = d.attempts + 1,
        next_attempt_at = v.next_attempt_at,
        delivered_at = coalesce(v.delivered_at, d.delivered_at),
        last_status_code = v.status_code
    FROM v WHERE d.id = v.id AND d.status <> 'delivered'
    RETURNING d.id
),
-- Every attempt of a delivery that still exists is kept, one delivered meanwhile too (by
-- another sender after a lease ran out); a delivery deleted with its endpoint has none.
attempts AS (
    INSERT INTO webhooks_webhookattempt (delivery_id, started_at, duration_ms, status_code, response_excerpt, error)
    SELECT v.id, v.started_at, v.duration_ms, v.status_code, v.excerpt, v.error
    FROM v JOIN webhooks_webhookdelivery d ON d.id = v.id
    RETURNING 1
),
cleared AS (  -- an endpoint whose last answer here was a success is no longer failing
    UPDATE webhooks_webhookendpoint e SET failing_since = NULL
    WHERE e.id = ANY(%(succeeded)s::uuid[]) AND e.failing_since IS NOT NULL
    RETURNING 1
),
failing AS (  -- one whose last answer was a failure starts failing then, unless it already is
    UPDATE webhooks_webhookendpoint e SET failing_since = f.at
    FROM unnest(%(failed_ids)s::uuid[], %(failed_at)s::timestamptz[]) AS f(id, at)
    WHERE e.id = f.id AND e.failing_since IS NULL
    RETURNING 1
)
SELECT (SELECT count(*) FROM moved), (SELECT count(*) FROM attempts),
       (SELECT count(*) FROM cleared), (SELECT count(*) FROM failing)
"""


def attempts_record(*, outcomes: list[Outcome]) -> None:
    """Store the attempts, move their deliveries on and the endpoints' failure streaks, in one
    statement; then prompt the retries due soon and disable endpoints failing for a day."""
    crash_point("webhooks.after_send")  # the request was made; its attempt is not stored yet
    now = clock.now()
    columns: dict[str, list] = {
        k: [] for k in ("ids", "statuses", "nexts", "delivered", "codes", "started", "durations", "excerpts", "errors")
    }  # fmt: skip
    last_by_endpoint: dict = {}
    soonest_retry = None
    for outcome in sorted(outcomes, key=lambda o: o.started_at):
        claim, result = outcome.claim, outcome.result
        if result.ok:
            status, next_at, delivered = WebhookDelivery.Status.DELIVERED, None, now
        else:
            delay = retry_delay(claim.attempts + 1)
            status = WebhookDelivery.Status.FAILED if delay else WebhookDelivery.Status.ABANDONED
            next_at, delivered = (now + delay if delay else None), None
            if delay and (soonest_retry is None or delay < soonest_retry):
                soonest_retry = delay
        for key, value in (
            ("ids", claim.delivery_id),
            ("statuses", str(status)),
            ("nexts", next_at),
            ("delivered", delivered),
            ("codes", result.status_code),
            ("started", outcome.started_at),
            ("durations", result.duration_ms),
            ("excerpts", result.excerpt),
            ("errors", result.error[:500]),
        ):
            columns[key].append(value)
        last_by_endpoint[claim.endpoint_id] = (result.ok, outcome.started_at)
    failed = {e: at for e, (ok, at) in last_by_endpoint.items() if not ok}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(  # without JIT, as the claim: compiling costs more than running
            NO_JIT + RECORD_SQL,
            {
                **columns,
                "succeeded": [str(e) for e, (ok, _) in last_by_endpoint.items() if ok],
                "failed_ids": [str(e) for e in failed],
                "failed_at": list(failed.values()),
            },
        )
    soon = soonest_retry is not None and soonest_retry <= PROMPT_RETRIES_WITHIN
    if soon and _once(RETRY_QUEUED_KEY, soonest_retry.total_seconds()):
        from billing.webhooks.tasks import send_deliveries  # tasks import this module

        send_deliveries.apply_async(countdown=soonest_retry.total_seconds())
    if failed:
        from billing.webhooks.services import webhook_endpoints_disable_failing

        webhook_endpoints_disable_failing(endpoint_ids=list(failed))


def webhook_deliveries_sweep() -> int:
    """The beat job: disable endpoints failing for a day, then send whatever is due (retries,
    leases of killed senders, deliveries whose task was lost). Returns attempts made."""
    from billing.webhooks.services import webhook_endpoints_disable_failing

    webhook_endpoints_disable_failing()
    if not WebhookDelivery.objects.filter(status__in=OPEN, next_attempt_at__lte=clock.now()).exists():
        return 0
    return webhook_deliveries_send()
