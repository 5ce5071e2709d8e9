"""The dispatcher's debounce flag can lie (a lost message, or a dispatcher that cleared it in
another cache): events committed under it are dispatched within about one window anyway,
not left for the minute sweeper."""

import time

import pytest
import redis
from django.core.cache import cache
from django.db import transaction

from accounts import services as account_services
from config.celery import app
from core.events.models import Event
from core.events.services import DISPATCH_FLAG_SECONDS, DISPATCH_QUEUED_KEY, dispatch_prompt
from core.models import JobHeartbeat
from tests.redis_urls import TEST_BROKER_URL
from tests.workers import Worker, send, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def broker():
    client = redis.Redis.from_url(TEST_BROKER_URL)
    client.flushdb()
    yield
    client.flushdb()


def _flag_left_behind() -> None:
    """What a dispatcher whose message was lost (or that cleared the flag in another cache)
    leaves: the flag, for its whole window."""
    assert cache.add(DISPATCH_QUEUED_KEY, 1, timeout=DISPATCH_FLAG_SECONDS)


def test_a_flag_left_behind_delays_an_event_by_one_window_at_most(org, broker, tmp_path):
    worker = Worker(tmp_path / "worker.log")
    try:
        send("core.tasks.heartbeat")  # the worker is up before the clock starts
        wait_until(lambda: JobHeartbeat.objects.exists(), timeout=120, message=worker.output)
        _flag_left_behind()
        app.conf.task_always_eager = False  # the event's dispatch goes to the real worker
        with transaction.atomic():
            account_services.customer_create(organization=org, email="late@example.com")
        committed = time.monotonic()
        app.conf.task_always_eager = True
        wait_until(
            lambda: not Event.objects.filter(dispatched_at__isnull=True).exists(),
            timeout=DISPATCH_FLAG_SECONDS + 10,
            message=lambda: f"the event waited for the sweeper\n{worker.output()}",
        )
        assert time.monotonic() - committed < DISPATCH_FLAG_SECONDS + 10
    finally:
        app.conf.task_always_eager = True
        worker.stop()


def test_prompts_under_a_flag_schedule_one_trailing_run_per_window(org, broker):
    _flag_left_behind()
    app.conf.task_always_eager = False
    try:
        for _ in range(20):
            dispatch_prompt()
    finally:
        app.conf.task_always_eager = True
    queued = redis.Redis.from_url(TEST_BROKER_URL).llen("celery")
    assert queued == 1  # twenty swallowed prompts: one trailing dispatcher, not twenty
