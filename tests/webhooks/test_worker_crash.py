"""A real worker killed after its POST reached the receiver and before the attempt was stored:
the sweep sends the delivery again once the lease runs out, with the same webhook-id, and the
delivery ends delivered. At least once, never lost."""

import signal
import time

import pytest
import redis
from django.db import transaction

from billing.webhooks import services
from billing.webhooks.models import WebhookAttempt, WebhookDelivery
from config.celery import app
from tests.redis_urls import TEST_BROKER_URL
from tests.workers import Worker, send, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

LEASE_SECONDS = 2


@pytest.fixture
def broker():
    client = redis.Redis.from_url(TEST_BROKER_URL)
    client.flushdb()
    yield
    client.flushdb()


def test_a_worker_killed_mid_delivery_delivers_at_least_once_with_the_same_id(
    org, receiver, broker, tmp_path
):
    endpoint, secret = services.webhook_endpoint_create(
        organization=org, url=receiver.plan("/crash"), event_types=["*"]
    )
    crashing = Worker(
        tmp_path / "crashing.log",
        RECUR_CRASH_AT="webhooks.after_send",
        RECUR_WEBHOOK_CLAIM_LEASE_SECONDS=str(LEASE_SECONDS),
    )
    try:
        app.conf.task_always_eager = False  # the event's tasks go to the real worker
        with transaction.atomic():
            event = services.webhook_endpoint_send_test(endpoint=endpoint)
        app.conf.task_always_eager = True
        assert crashing.wait_for_death(timeout=120) == -signal.SIGKILL, crashing.output()
    finally:
        app.conf.task_always_eager = True
        crashing.stop()

    assert len(receiver.at("/crash")) == 1  # the request went out
    row = WebhookDelivery.objects.get()
    assert row.status == "pending" and row.attempts == 0 and not WebhookAttempt.objects.exists()

    time.sleep(LEASE_SECONDS + 0.5)  # the killed worker's lease runs out
    clean = Worker(tmp_path / "clean.log")
    try:
        send("webhooks.sweep")  # what beat sends every 15 seconds
        wait_until(
            lambda: WebhookDelivery.objects.get().status == "delivered",
            timeout=120,
            message=lambda: clean.output(),
        )
    finally:
        clean.stop()

    requests = receiver.at("/crash")
    assert len(requests) == 2
    assert {r.headers["webhook-id"] for r in requests} == {event.public_id}
    assert all(r.verify(secret)["id"] == event.public_id for r in requests)
    row.refresh_from_db()
    assert row.attempts == 1 and WebhookAttempt.objects.get().status_code == 200
