"""Webhook delivery: a burst of events fanned out to endpoints, then a steady rate's latency.

    manage.py bench_webhooks --events 10000 --endpoints 2 --rate 100 --seconds 30

Starts a local receiver (``billing.webhooks.bench_receiver``, its own process, checking a
sample of signatures) and real Celery worker processes on a queue of their own, creates a
throwaway organization with customers and endpoints on the receiver, then:

1. floor: signed POSTs per second one process gets through to the receiver with aiohttp (the
   sender's client, as many in flight as the sender may have, nothing else to do: no claims,
   no database), then with ``requests`` from threads (the client the sender used before);
2. burst: ``--events`` ``customer.updated`` events recorded through ``events_record_bulk``
   (``--batch`` per transaction), timed from the first commit to the last arrival:
   deliveries per second;
3. steady: one event per transaction at ``--rate`` a second for ``--seconds``; the share of
   events delivered within 1 s of their commit, and p50/p95/p99.

The whole path is measured: outbox, dispatch, the webhooks consumer, the delivery engine,
HTTP. Everything it created is deleted at the end.
"""

import json
import time
import uuid

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from accounts.api import CustomerSerializer
from accounts.models import Customer, Organization
from accounts.services import organization_create
from billing.webhooks import services as webhook_services
from billing.webhooks.bench import (
    Latencies,
    ReceiverProcess,
    WorkerProcesses,
    async_post_floor,
    duplicates,
    free_port,
    latencies,
    queue_backlog,
    queue_delete,
    raw_post_floor,
    stage_profile,
)
from config.celery import app as celery_app
from core.events import registry
from core.events.models import Event
from core.events.services import event_envelope, event_record, events_record_bulk

EVENT_TYPE = "customer.updated"
TARGET_RATE = 1000  # deliveries per second
TARGET_SHARE = 0.95  # of events within 1 s of their commit at 100 events per second


class Command(BaseCommand):
    help = __doc__.splitlines()[0]

    def add_arguments(self, parser):
        parser.add_argument("--events", type=int, default=10_000, help="events in the burst")
        parser.add_argument("--endpoints", type=int, default=2)
        parser.add_argument("--customers", type=int, default=1000, help="objects the events are about")
        parser.add_argument("--batch", type=int, default=100, help="burst events per transaction")
        parser.add_argument("--rate", type=float, default=100, help="steady events per second")
        parser.add_argument("--seconds", type=float, default=30, help="length of the steady phase")
        parser.add_argument("--workers", type=int, default=2, help="Celery worker processes")
        parser.add_argument(
            "--send-workers",
            type=int,
            default=1,
            help="of the workers, how many read only the sender's queue (as with RECUR_WEBHOOK_QUEUE); "
            "0 or all: every worker reads both",
        )
        parser.add_argument("--pool", default="solo", help="the workers' pool: solo, prefork, threads")
        parser.add_argument("--concurrency", type=int, default=1, help="per worker (prefork, threads)")
        parser.add_argument("--floor", type=int, default=5000, help="raw POSTs for the floor (0: skip)")
        parser.add_argument("--floor-threads", type=int, default=32, help="threads of the requests floor")
        parser.add_argument(
            "--floor-concurrency",
            type=int,
            default=0,
            help="in flight for the aiohttp floor (0: what the sender may have, endpoints x the endpoint cap)",
        )
        parser.add_argument("--timeout", type=float, default=120, help="seconds without progress to give up")
        parser.add_argument(
            "--worker-include", action="append", default=[], help="extra modules the workers import"
        )

    def handle(self, *args, **opts):
        if connection.in_atomic_block:
            raise CommandError("run outside a transaction: the workers must see what it commits")
        self.opts = opts
        self.queue = queue = f"bench-webhooks-{uuid.uuid4().hex[:8]}"
        saved = (celery_app.conf.task_always_eager, celery_app.conf.task_default_queue)
        celery_app.conf.task_always_eager, celery_app.conf.task_default_queue = False, queue
        self.org = organization_create(name=f"Bench webhooks {queue[-8:]}")
        receiver = workers = None
        try:
            self._ensure_event_type()
            customers = Customer.objects.bulk_create(
                Customer(organization=self.org, email=f"bench{i}@example.com", name=f"Bench {i}")
                for i in range(opts["customers"])
            )
            port = free_port()
            names = [f"e{i}" for i in range(opts["endpoints"])]
            secrets = {}
            for name in names:
                _endpoint, secrets[name] = webhook_services.webhook_endpoint_create(
                    organization=self.org,
                    url=f"http://127.0.0.1:{port}/ep/{name}",
                    event_types=[EVENT_TYPE],
                    description="bench",
                )
            secrets["floor"] = secrets[names[0]]
            receiver = ReceiverProcess(port=port, secrets=secrets, verify_every=10)
            workers = WorkerProcesses(
                count=opts["workers"],
                pool=opts["pool"],
                concurrency=opts["concurrency"],
                queue=queue,
                include=opts["worker_include"],
                send_workers=opts["send_workers"],
            )
            self._report_header()
            self._warm_up(receiver, workers, customers[0], names)
            if opts["floor"]:
                self._floor(receiver, secrets["floor"])
            self._burst(receiver, workers, customers, names)
            self._steady(receiver, workers, customers, names)
        finally:
            for process in (workers, receiver):
                if process is not None:
                    process.stop()
            queue_delete(queue)
            queue_delete(f"{queue}-send")
            celery_app.conf.task_always_eager, celery_app.conf.task_default_queue = saved
            Organization.objects.filter(pk=self.org.pk).delete()

    # --- phases --------------------------------------------------------------------------------

    def _ensure_event_type(self) -> None:
        """The catalogue declares ``customer.updated`` with the accounts app; until it does,
        declare it here (this process only: the workers' consumer needs no registration)."""
        if EVENT_TYPE not in registry.REGISTRY.types:
            registry.register_object(
                "customer",
                model=Customer,
                serializer=CustomerSerializer,
                events={"updated": "A customer's details changed."},
            )

    def _warm_up(self, receiver, workers, customer, names) -> None:
        """One event through the whole path: the workers are up and the connections open."""
        with transaction.atomic():
            event_record(type=EVENT_TYPE, obj=customer)
        self._wait_for(
            receiver, workers, len(names), "the warm-up event", timeout=max(120, self.opts["timeout"])
        )
        receiver.reset()

    def _floor(self, receiver, secret) -> None:
        body = self._sample_body()
        concurrency = self.opts["floor_concurrency"] or min(
            settings.RECUR_WEBHOOK_SENDER_CONCURRENCY,
            settings.RECUR_WEBHOOK_ENDPOINT_CONCURRENCY * self.opts["endpoints"],
        )
        rate = async_post_floor(
            url=receiver.url("floor"),
            secret=secret,
            body=body,
            count=self.opts["floor"],
            concurrency=concurrency,
        )
        self.stdout.write(
            f"floor: {rate:,.0f} signed POSTs/s from one process (aiohttp as the sender, {concurrency} in flight, "
            f"no database; {len(body)}-byte body)"
        )
        receiver.reset()
        rate = raw_post_floor(
            url=receiver.url("floor"),
            secret=secret,
            body=body,
            count=self.opts["floor"],
            threads=self.opts["floor_threads"],
        )
        self.stdout.write(
            f"floor (the former sender's client): {rate:,.0f} signed POSTs/s from one process "
            f"(requests, {self.opts['floor_threads']} threads)"
        )
        receiver.reset()

    def _burst(self, receiver, workers, customers, names) -> None:
        n, batch = self.opts["events"], self.opts["batch"]
        expected = n * len(names)
        first_event = self._last_event_id()
        started = time.time()
        for start in range(0, n, batch):
            objects = [customers[i % len(customers)] for i in range(start, min(n, start + batch))]
            with transaction.atomic():
                events_record_bulk(type=EVENT_TYPE, objects=objects)
        recorded = time.time() - started
        self._wait_for(receiver, workers, expected, "the burst")
        arrivals = receiver.arrivals()
        elapsed = max(a[0] for a in arrivals) - started
        rate = expected / elapsed
        self.stdout.write(
            f"burst: {n:,} events x {len(names)} endpoints = {expected:,} deliveries in {elapsed:.2f} s "
            f"= {rate:,.0f} deliveries/s (target >= {TARGET_RATE:,}: {'met' if rate >= TARGET_RATE else 'MISSED'}); "
            f"recording took {recorded:.2f} s ({batch} per transaction); "
            f"repeats {duplicates(arrivals)}; {self._signatures(receiver)}"
        )
        self._profile(first_event)
        receiver.reset()

    def _steady(self, receiver, workers, customers, names) -> None:
        rate, seconds = self.opts["rate"], self.opts["seconds"]
        count = max(1, int(rate * seconds))
        committed: dict[str, float] = {}
        first_event = self._last_event_id()
        started = time.monotonic()
        behind = 0.0
        for i in range(count):
            due = started + i / rate
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            else:
                behind = max(behind, -pause)
            with transaction.atomic():
                event = event_record(type=EVENT_TYPE, obj=customers[i % len(customers)])
            committed[event.public_id] = time.time()
        actual = count / (time.monotonic() - started)
        self._wait_for(receiver, workers, count * len(names), "the steady phase")
        per_delivery, per_event = latencies(committed, receiver.arrivals(), names)
        share = per_event.share_within(1.0)
        self.stdout.write(
            f"steady: {count:,} events at {actual:,.1f}/s (asked {rate:g}/s; generator at most "
            f"{behind * 1000:.0f} ms behind) x {len(names)} endpoints"
        )
        self._latency_line("  per event (every endpoint has it)", per_event)
        self._latency_line("  per delivery", per_delivery)
        self.stdout.write(
            f"  {share:.1%} of events delivered within 1 s of their commit "
            f"(target {TARGET_SHARE:.0%}: {'met' if share >= TARGET_SHARE else 'MISSED'})"
        )
        self._profile(first_event)

    # --- helpers -------------------------------------------------------------------------------

    def _report_header(self) -> None:
        o = self.opts
        self.stdout.write(
            f"bench_webhooks: {o['workers']} worker process(es) ({self._split()}), pool {o['pool']} x {o['concurrency']}, "
            f"{o['endpoints']} endpoints, {o['customers']:,} customers"
        )

    def _split(self) -> str:
        workers, send = self.opts["workers"], self.opts["send_workers"]
        if not 0 < send < workers:
            return "each on both queues"
        return f"{workers - send} on events, {send} on the sender's queue"

    def _latency_line(self, label: str, values: Latencies) -> None:
        self.stdout.write(
            f"{label}: p50 {values.percentile(50) * 1000:,.0f} ms, p95 {values.percentile(95) * 1000:,.0f} ms, "
            f"p99 {values.percentile(99) * 1000:,.0f} ms, max {values.percentile(100) * 1000:,.0f} ms"
            + (f", {values.missing:,} never arrived" if values.missing else "")
        )

    def _wait_for(self, receiver, workers, expected: int, what: str, timeout: float | None = None) -> None:
        """Until the receiver has ``expected`` arrivals; give up after ``--timeout`` seconds
        without progress (the warm-up also waits for the workers to start)."""
        timeout = timeout or self.opts["timeout"]
        last, last_change = -1, time.monotonic()
        while True:
            received = receiver.stats()["received"]
            if received >= expected:
                return
            if received != last:
                last, last_change = received, time.monotonic()
            elif time.monotonic() - last_change > timeout:
                raise CommandError(
                    f"{what}: {received:,} of {expected:,} deliveries arrived, none for "
                    f"{timeout:g} s; {queue_backlog(self.queue):,} tasks queued\n{workers.output()[-1500:]}"
                )
            workers.check_alive()
            time.sleep(0.05)

    def _signatures(self, receiver) -> str:
        stats = receiver.stats()
        if stats["bad_signatures"]:
            raise CommandError(f"{stats['bad_signatures']} deliveries had a bad signature")
        return f"{stats['verified']:,} signatures verified with standardwebhooks"

    def _last_event_id(self) -> int:
        return Event.objects.order_by("-id").values_list("id", flat=True).first() or 0

    def _profile(self, after_event_id: int) -> None:
        """Where the time went (from the rows), and tasks still queued when the last arrived."""
        self.stdout.write(
            f"  stages: {stage_profile(organization_id=self.org.pk, after_event_id=after_event_id)}; "
            f"{queue_backlog(self.queue):,} tasks still queued"
        )

    def _sample_body(self) -> bytes:
        sample = Customer.objects.filter(organization=self.org).first()
        with transaction.atomic():
            event = event_record(type=EVENT_TYPE, obj=sample)
            transaction.set_rollback(True)  # only its shape is wanted
        return json.dumps(event_envelope(event)).encode()
