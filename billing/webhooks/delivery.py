"""The delivery engine: one row per (event, endpoint), sent concurrently, retried for ~3 days.

- The ``webhooks`` consumer of the outbox writes the deliveries of an event (database only)
  and, after commit, enqueues ``webhooks.send``.
- A sender claims due, eligible deliveries with ``FOR UPDATE SKIP LOCKED`` and leases them by
  moving ``next_attempt_at`` ahead; it POSTs them from a thread pool and records the attempts
  in bulk. A killed sender's leases run out and the sweep sends those deliveries again (at least
  once, with the same ``webhook-id``).
- Order: a delivery is eligible only when no earlier delivery of the same object to the same
  endpoint is still open (pending or failed), so one object's events arrive in order while other
  objects, and other endpoints, flow. A claim takes at most ``RECUR_WEBHOOK_ENDPOINT_CONCURRENCY``
  in-flight deliveries per endpoint, so a slow endpoint holds a few threads, never the pool.
"""

import json
import logging
import random
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connection, models, transaction

from billing.webhooks import transport
from billing.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
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
    SELECT c.id
    FROM due_endpoints e
    LEFT JOIN busy b ON b.endpoint_id = e.id
    CROSS JOIN LATERAL (
        SELECT d.id FROM webhooks_webhookdelivery d
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
UPDATE webhooks_webhookdelivery d SET next_attempt_at = %(lease)s
FROM candidates WHERE d.id = candidates.id
RETURNING d.id, d.endpoint_id, d.event_id, d.attempts
"""


@dataclass(frozen=True)
class Claim:
    delivery_id: int
    endpoint_id: object
    event_id: int
    attempts: int


def deliveries_claim(*, limit: int, busy: Counter | None = None) -> list[Claim]:
    """Lease up to ``limit`` due, eligible deliveries (``busy``: in flight per endpoint)."""
    if limit <= 0:
        return []
    busy = {k: v for k, v in (busy or {}).items() if v > 0}
    now = clock.now()
    lease = now + timedelta(seconds=_setting("RECUR_WEBHOOK_CLAIM_LEASE_SECONDS", 120))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            CLAIM_SQL,
            {
                "busy_ids": [str(k) for k in busy],
                "busy_counts": list(busy.values()),
                "now": now,
                "lease": lease,
                "limit": limit,
                "per_endpoint": _setting("RECUR_WEBHOOK_ENDPOINT_CONCURRENCY", 16),
            },
        )
        rows = cursor.fetchall()
    return sorted((Claim(*row) for row in rows), key=lambda c: c.delivery_id)


# --- sending --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    claim: Claim
    started_at: object
    result: transport.SendResult


def _secrets(endpoint: WebhookEndpoint, at) -> list[str]:
    keys = [endpoint.secret]
    if (
        endpoint.previous_secret
        and endpoint.previous_secret_expires_at
        and endpoint.previous_secret_expires_at > at
    ):
        keys.append(endpoint.previous_secret)
    return keys


def _send_one(claim: Claim, endpoint: WebhookEndpoint, msg_id: str, body: str) -> Outcome:
    started_at = clock.now()
    headers = signed_headers(
        msg_id=msg_id, timestamp=started_at, body=body, secrets_=_secrets(endpoint, started_at)
    )
    return Outcome(claim, started_at, transport.post(url=endpoint.url, body=body, headers=headers))


class Sender:
    """Claims and sends until nothing is left to claim or in flight (or the time budget ends)."""

    def __init__(self, *, threads: int | None = None, budget_seconds: float | None = None):
        self.threads = threads or _setting("RECUR_WEBHOOK_SENDER_THREADS", 32)
        self.budget = budget_seconds or _setting("RECUR_WEBHOOK_SENDER_BUDGET_SECONDS", 30)
        self.in_flight: dict[Future, Claim] = {}
        self.busy: Counter = Counter()
        self.bodies: dict[int, tuple[str, str]] = {}  # event id -> (webhook-id, body)
        self.sent = 0

    def _prepare(self, claims: list[Claim]) -> tuple[dict, dict]:
        new_events = {c.event_id for c in claims} - self.bodies.keys()
        for event in Event.objects.filter(pk__in=new_events):
            self.bodies[event.pk] = (
                event.public_id,
                json.dumps(event_envelope(event), separators=(",", ":"), ensure_ascii=False),
            )
        endpoints = WebhookEndpoint.objects.in_bulk({c.endpoint_id for c in claims})
        return endpoints, self.bodies

    def run(self) -> int:
        debounce_started(key=SEND_QUEUED_KEY)  # deliveries committed from now on prompt a new run
        deadline = time.monotonic() + self.budget
        more = False
        with ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="webhook-sender") as pool:
            while True:
                claims = []
                room = self.threads - len(self.in_flight)
                if time.monotonic() >= deadline:
                    more = more or bool(self.in_flight)
                elif room >= max(1, self.threads // 4) or not self.in_flight:
                    claims = deliveries_claim(limit=room, busy=self.busy)
                if claims:
                    endpoints, bodies = self._prepare(claims)
                    # An endpoint deleted since the claim took its deliveries with it.
                    claims = [c for c in claims if c.endpoint_id in endpoints and c.event_id in bodies]
                    for claim in claims:
                        msg_id, body = bodies[claim.event_id]
                        future = pool.submit(_send_one, claim, endpoints[claim.endpoint_id], msg_id, body)
                        self.in_flight[future] = claim
                        self.busy[claim.endpoint_id] += 1
                if not self.in_flight:
                    break
                done, _ = wait(list(self.in_flight), timeout=1.0, return_when=FIRST_COMPLETED)
                if done and len(done) < len(self.in_flight):  # gather a few more for one write
                    more_done, _ = wait([f for f in self.in_flight if f not in done], timeout=BATCH_WINDOW)
                    done |= more_done
                outcomes = []
                for future in done:
                    claim = self.in_flight.pop(future)
                    self.busy[claim.endpoint_id] -= 1
                    outcomes.append(future.result())
                if outcomes:
                    attempts_record(outcomes=outcomes)
                    self.sent += len(outcomes)
        if more:
            send_prompt()
        return self.sent


def webhook_deliveries_send(*, budget_seconds: float | None = None) -> int:
    """Send every due delivery (the ``webhooks.send`` task); returns attempts made."""
    return Sender(budget_seconds=budget_seconds).run()


# --- recording ------------------------------------------------------------------------------

UPDATE_SQL = """
UPDATE webhooks_webhookdelivery d SET
    status = v.status,
    attempts = d.attempts + 1,
    next_attempt_at = v.next_attempt_at,
    delivered_at = coalesce(v.delivered_at, d.delivered_at),
    last_status_code = v.status_code
FROM unnest(%(ids)s::bigint[], %(statuses)s::varchar[], %(nexts)s::timestamptz[],
            %(delivered)s::timestamptz[], %(codes)s::int[])
     AS v(id, status, next_attempt_at, delivered_at, status_code)
WHERE d.id = v.id AND d.status <> 'delivered'
RETURNING d.id
"""


def attempts_record(*, outcomes: list[Outcome]) -> None:
    """Store the attempts and move their deliveries on, in one transaction; then prompt the
    retries due soon and disable endpoints that have failed for a day."""
    crash_point("webhooks.after_send")  # the request was made; its attempt is not stored yet
    now = clock.now()
    ids, statuses, nexts, delivered, codes = [], [], [], [], []
    last_by_endpoint: dict = {}
    soonest_retry = None
    for outcome in sorted(outcomes, key=lambda o: o.started_at):
        claim, result = outcome.claim, outcome.result
        ids.append(claim.delivery_id)
        codes.append(result.status_code)
        if result.ok:
            statuses.append(WebhookDelivery.Status.DELIVERED)
            nexts.append(None)
            delivered.append(now)
        else:
            delay = retry_delay(claim.attempts + 1)
            statuses.append(WebhookDelivery.Status.FAILED if delay else WebhookDelivery.Status.ABANDONED)
            nexts.append(now + delay if delay else None)
            delivered.append(None)
            if delay and (soonest_retry is None or delay < soonest_retry):
                soonest_retry = delay
        last_by_endpoint[claim.endpoint_id] = (result.ok, outcome.started_at)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                UPDATE_SQL,
                {"ids": ids, "statuses": statuses, "nexts": nexts, "delivered": delivered, "codes": codes},
            )
            moved = {row[0] for row in cursor.fetchall()}
        gone = set(ids) - moved  # delivered meanwhile (still recorded) or deleted with the endpoint
        if gone:
            gone -= set(WebhookDelivery.objects.filter(pk__in=gone).values_list("pk", flat=True))
        WebhookAttempt.objects.bulk_create(
            [
                WebhookAttempt(
                    delivery_id=o.claim.delivery_id,
                    started_at=o.started_at,
                    duration_ms=o.result.duration_ms,
                    status_code=o.result.status_code,
                    response_excerpt=o.result.excerpt,
                    error=o.result.error[:500],
                )
                for o in outcomes
                if o.claim.delivery_id not in gone
            ]
        )
        succeeded = [e for e, (ok, _) in last_by_endpoint.items() if ok]
        failed = {e: at for e, (ok, at) in last_by_endpoint.items() if not ok}
        if succeeded:
            WebhookEndpoint.objects.filter(pk__in=succeeded, failing_since__isnull=False).update(
                failing_since=None
            )
        for endpoint_id, at in failed.items():
            WebhookEndpoint.objects.filter(pk=endpoint_id, failing_since__isnull=True).update(
                failing_since=at
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
