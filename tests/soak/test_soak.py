"""A bounded soak: ten clients race plan changes, cancels and uncancels, pauses and resumes,
refunds, wallet adjustments, card updates and payment retries, through the API and the
services, against a real Celery worker process running renewals and dunning on the same
few dozen subscriptions (daily plans whose periods ended days ago, so renewals stay due
for the whole run). Nothing may surface as an error: no 5xx, no unexpected exception, no
failed task, no traceback in the worker's log; and every end state is consistent.

Tens of seconds by default (``RECUR_SOAK_SECONDS``). The write latencies are printed
(p50/p99 per operation), never asserted.
"""

import logging
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
import traceback
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from django.db import connection, connections
from django.db.models import Count, Q, Sum
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import services as account_services
from accounts.models import Customer, Organization
from billing.ledger.reconciliation import reconciliation_run
from billing.ledger.wallet import wallet_adjust
from billing.orders.models import Order
from billing.payments import services as payment_services
from billing.payments.models import Payment
from billing.refunds.models import Refund
from billing.subscriptions import dunning, renewals
from billing.subscriptions import services as subscription_services
from billing.subscriptions import tasks as subscription_tasks
from billing.subscriptions.models import Subscription
from config.celery import app
from core.errors import ServiceError
from tests.redis_urls import TEST_BROKER_URL, TEST_CACHE_URL

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
SOAK_SECONDS = float(os.environ.get("RECUR_SOAK_SECONDS", "25"))
MAX_OPERATIONS = 4000  # per run, whatever the time
CLIENTS = 10
SUBSCRIPTIONS = 36
CUSTOMERS = 12
DAYS_DUE = 6  # renewals due per subscription when the soak starts


# --- the world -------------------------------------------------------------------------------


@pytest.fixture
def world(make_org, make_product):
    org = make_org("Soak")
    Organization.objects.filter(pk=org.pk).update(payment_processor="manual")
    org.refresh_from_db()
    basic = make_product(
        "Daily basic",
        recurring="day",
        organization=org,
        prices=[{"currency": "usd", "type": "fixed", "amount": 1000}],
    )
    pro = make_product("Daily pro", recurring="day", organization=org,
                       prices=[{"currency": "usd", "type": "fixed", "amount": 2500}])  # fmt: skip
    prices = [basic.prices.get(), pro.prices.get()]
    customers = []
    for n in range(CUSTOMERS):
        customer = account_services.customer_create(
            organization=org, email=f"soak{n}@example.com", name=f"Soak {n}"
        )
        # A third of the customers have no card yet: their renewals fail into dunning until
        # a card arrives (the card-update client), which retries them at once.
        Customer.objects.filter(pk=customer.pk).update(
            stripe_customer_id=f"manual_cus_soak{n}",
            default_payment_method_id="" if n % 3 == 0 else "pm_soak",
        )
        customers.append(customer)
    now = timezone.now()
    anchor = now - timedelta(days=DAYS_DUE, hours=1)
    Subscription.objects.bulk_create(
        Subscription(
            organization=org, customer=customers[n % CUSTOMERS], product=prices[n % 2].product,
            price=prices[n % 2], status="active", currency="usd", amount=prices[n % 2].amount,
            billing_anchor=anchor, current_period_start=anchor, current_period_end=anchor + timedelta(days=1),
        )
        for n in range(SUBSCRIPTIONS)
    )  # fmt: skip
    return org, prices, customers


# --- the worker ------------------------------------------------------------------------------


@pytest.fixture
def worker(tmp_path):
    broker = redis.Redis.from_url(TEST_BROKER_URL)
    broker.flushdb()  # the suite's own broker database: nothing left from earlier tests
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}",
        "CELERY_BROKER_URL": TEST_BROKER_URL,
        "CACHE_URL": TEST_CACHE_URL,
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    log = tmp_path / "worker.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "threads", "--concurrency", "4",
         "--loglevel", "INFO", "--without-mingle", "--without-gossip", "--without-heartbeat"],
        cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    saved = app.conf.task_always_eager
    app.conf.task_always_eager = False  # tasks go to the real worker through the broker
    try:
        deadline = time.monotonic() + 30
        while b"ready." not in log.read_bytes():
            assert process.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.2)
        yield broker, log
    finally:
        app.conf.task_always_eager = saved
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        broker.flushdb()


def _queue_empty(broker) -> bool:
    return broker.llen("celery") == 0 and broker.hlen("unacked") == 0


# --- the clients -----------------------------------------------------------------------------


class Soak:
    def __init__(self, org, prices, customers):
        self.org, self.prices, self.customers = org, prices, customers
        self.stop_at = time.monotonic() + SOAK_SECONDS
        self.lock = threading.Lock()
        self.operations = 0
        self.timings: dict[str, list[float]] = defaultdict(list)
        self.refused: dict[str, int] = defaultdict(int)
        self.errors: list[str] = []

    def running(self) -> bool:
        with self.lock:
            return time.monotonic() < self.stop_at and self.operations < MAX_OPERATIONS and not self.errors

    def record(self, name: str, seconds: float, refused: bool) -> None:
        with self.lock:
            self.operations += 1
            self.timings[name].append(seconds)
            if refused:
                self.refused[name] += 1

    def error(self, text: str) -> None:
        with self.lock:
            self.errors.append(text)

    def api(self, client: APIClient, name: str, path: str, body: dict) -> None:
        started = time.perf_counter()
        response = client.post(path, body, format="json")
        if response.status_code >= 500:
            self.error(f"{name}: {response.status_code} {getattr(response, 'data', response.content)}")
        self.record(name, time.perf_counter() - started, refused=response.status_code >= 400)

    def call(self, name: str, operation) -> None:
        started = time.perf_counter()
        try:
            operation()
            refused = False
        except ServiceError:  # a rule said no (already canceling, nothing refundable...): fine
            refused = True
        self.record(name, time.perf_counter() - started, refused)


def _subscription_client(soak: Soak, rng: random.Random, client: APIClient) -> None:
    subscription = Subscription.objects.filter(organization=soak.org).order_by("?").first()
    base = f"/v1/subscriptions/{subscription.pk}"
    action = rng.choice(["change", "change", "cancel", "pause"])
    if action == "change":
        price = next(p for p in soak.prices if p.pk != subscription.price_id)
        behavior = rng.choice(["invoice", "prorate", "next_period", "none"])
        soak.api(
            client, "change", f"{base}/change", {"price_id": str(price.pk), "proration_behavior": behavior}
        )
    elif action == "cancel":
        soak.api(client, "cancel", f"{base}/cancel", {"reason": "too_expensive"})
        soak.api(client, "uncancel", f"{base}/uncancel", {})
    else:
        soak.api(client, "pause", f"{base}/pause", {})
        soak.api(client, "resume", f"{base}/resume", {})


def _money_client(soak: Soak, rng: random.Random, client: APIClient) -> None:
    action = rng.choice(["refund", "refund", "wallet", "wallet_service"])
    customer = rng.choice(soak.customers)
    if action == "refund":
        order = (
            Order.objects.filter(
                organization=soak.org, status__in=["paid", "partially_refunded"], total__gt=0
            )
            .order_by("?")
            .first()
        )
        if order is not None:
            amount = rng.randint(1, max(1, order.total // 2))
            soak.api(
                client,
                "refund",
                "/v1/refunds",
                {"order_id": str(order.pk), "amount": amount, "reason": "other"},
            )
    elif action == "wallet":
        amount = rng.choice([300, 500, -200])
        soak.api(client, "wallet_adjust", f"/v1/customers/{customer.pk}/wallet/adjustments",
                 {"amount": amount, "currency": "usd", "reason": "soak"})  # fmt: skip
    else:
        soak.call(
            "wallet_adjust",
            lambda: wallet_adjust(
                customer=customer, amount=rng.choice([400, -100]), currency="usd", reason="soak"
            ),
        )


def _payment_client(soak: Soak, rng: random.Random, client: APIClient) -> None:
    if rng.random() < 0.3:
        n = rng.randrange(CUSTOMERS)
        soak.call(
            "card_update",
            lambda: payment_services.customer_payment_method_saved(
                processor_customer_id=f"manual_cus_soak{n}", payment_method_id=f"pm_soak_{rng.randrange(3)}"
            ),
        )
        return
    order = Order.objects.filter(organization=soak.org, status="pending", due__gt=0).order_by("?").first()
    if order is None:
        return
    if rng.random() < 0.5:
        soak.api(client, "retry_payment", f"/v1/orders/{order.pk}/retry_payment", {})
    else:
        soak.call("retry_payment", lambda: subscription_services.order_payment_retry(order=order))


def _client(soak: Soak, n: int, secret: str) -> None:
    rng = random.Random(n)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    kinds = [_subscription_client, _money_client, _payment_client]
    try:
        while soak.running():
            try:
                kinds[n % 3](soak, rng, client)
            except Exception:
                soak.error(f"client {n}: {traceback.format_exc()}")
    finally:
        connections.close_all()


def _jobs(soak: Soak) -> None:
    """What beat would do, faster: the renewal dispatcher and the dunning job, on the worker."""
    try:
        while soak.running():
            subscription_tasks.dispatch_renewals.delay()
            subscription_tasks.run_dunning.delay()
            time.sleep(0.4)
    finally:
        connections.close_all()


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _report(soak: Soak) -> None:
    print(f"\nsoak: {soak.operations} writes in {SOAK_SECONDS:.0f} s by {CLIENTS} clients")
    for name, values in sorted(soak.timings.items()):
        print(
            f"  {name:14} n={len(values):5} refused={soak.refused[name]:4} "
            f"p50={statistics.median(values) * 1000:7.1f} ms  p99={_percentile(values, 0.99) * 1000:7.1f} ms"
        )


# --- the soak --------------------------------------------------------------------------------


def test_soak_races_end_without_errors_and_consistent(world, worker, make_token, caplog):
    org, prices, customers = world
    broker, log = worker
    caplog.set_level(logging.INFO, logger="recur.retry")
    soak = Soak(org, prices, customers)
    secrets = [make_token(org)[1] for _ in range(CLIENTS)]
    threads = [threading.Thread(target=_client, args=(soak, n, secrets[n])) for n in range(CLIENTS)]
    threads.append(threading.Thread(target=_jobs, args=(soak,)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=SOAK_SECONDS + 120)
    assert not any(thread.is_alive() for thread in threads), "a client hung"
    _report(soak)
    retried = [r for r in caplog.records if r.name == "recur.retry"]
    print(f"  transactions retried after a database race in the clients: {len(retried)}")
    assert not soak.errors, "\n".join(soak.errors[:5])
    logged = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not logged, [r.getMessage() for r in logged[:5]]
    assert soak.operations > 50

    # Let the worker finish: every renewal due is cycled, every enqueued payment collected.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        due = Subscription.objects.filter(
            status__in=renewals.RENEWING, current_period_end__lte=timezone.now()
        ).exists()
        if due:
            subscription_tasks.dispatch_renewals.delay()
        elif _queue_empty(broker):
            time.sleep(1)
            if _queue_empty(broker):
                break
        time.sleep(0.5)
    else:
        pytest.fail("the worker did not drain its queue")

    worker_log = log.read_text(errors="replace")
    print(
        f"  retries in the worker: {worker_log.count('retrying (')} transactions, {worker_log.count(' retry: ')} tasks"
    )
    assert "succeeded in" in worker_log  # it really ran the jobs
    for sign in ("Traceback", "raised unexpected", "ERROR/", "CRITICAL/"):
        assert sign not in worker_log, worker_log[worker_log.find(sign) - 2000 : worker_log.find(sign) + 2000]

    # Convergence: the jobs run again find nothing to do.
    orders_before = Order.objects.count()
    assert renewals.renewals_run(collect=False).cycled == 0
    assert dunning.dunning_run() == 0
    assert Order.objects.count() == orders_before

    _assert_consistent(org)


def _assert_consistent(org) -> None:
    reconciliation = reconciliation_run()
    assert reconciliation.ok, reconciliation.discrepancies

    orders = Order.objects.filter(organization=org)
    assert (
        orders.filter(subscription__isnull=False, billing_reason="subscription_cycle").count() > SUBSCRIPTIONS
    )
    # No order paid twice.
    twice = (
        Payment.objects.filter(organization=org, status="succeeded")
        .values("reference")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
    )
    assert not twice.exists(), list(twice)
    # Refunds never exceed what was paid, and the order's refunded amount is their sum.
    for order in orders.annotate(
        refund_sum=Sum(
            "refunds__amount", filter=Q(refunds__status__in=[Refund.Status.PENDING, Refund.Status.SUCCEEDED])
        )
    ).filter(refund_sum__gt=0):
        assert order.refund_sum <= order.total, order
        assert order.refunded_amount == order.refund_sum, order
    # No subscription billed twice for a period.
    doubled = (
        orders.filter(billing_reason__startswith="subscription_cycle")
        .values("subscription", "period_start")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
    )
    assert not doubled.exists(), list(doubled)
    # Invoice numbers gapless and unique.
    numbers = sorted(int(n.rsplit("-", 1)[1]) for n in orders.exclude(invoice_number=None).values_list(
        "invoice_number", flat=True))  # fmt: skip
    assert numbers == list(range(1, len(numbers) + 1))
