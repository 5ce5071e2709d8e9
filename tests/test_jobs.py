"""Celery configuration, schedules, and a real worker + beat ticking the heartbeat."""

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from config.celery import app
from core import selectors
from core.models import JobHeartbeat
from core.schedule_install import schedules_install
from core.schedules import HEARTBEAT_TASK_NAME, SCHEDULES
from core.tasks import heartbeat
from tests.redis_urls import TEST_BROKER_URL

ROOT = Path(__file__).resolve().parents[1]


def test_reliability_settings():
    conf = app.conf
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert 0 < conf.task_soft_time_limit < conf.task_time_limit
    assert conf.beat_scheduler == "django_celery_beat.schedulers:DatabaseScheduler"
    assert conf.broker_url.startswith("redis://")


@pytest.mark.django_db
def test_install_schedules_is_idempotent_and_removes_stale_ones():
    first = schedules_install()
    assert first.created == len(SCHEDULES)
    PeriodicTask.objects.filter(name=HEARTBEAT_TASK_NAME).update(enabled=False)
    heartbeat_task = PeriodicTask.objects.get(name=HEARTBEAT_TASK_NAME)
    PeriodicTask.objects.create(
        name="recur: retired job", task="core.tasks.gone", interval=heartbeat_task.interval
    )
    second = schedules_install()
    assert (second.created, second.updated, second.removed) == (0, 1, 1)
    third = schedules_install()
    assert (third.created, third.updated, third.unchanged, third.removed) == (0, 0, len(SCHEDULES), 0)
    assert PeriodicTask.objects.get(name=HEARTBEAT_TASK_NAME).enabled


@pytest.mark.django_db
def test_heartbeat_task_is_idempotent_in_effect():
    heartbeat.apply()
    heartbeat.apply()
    beat = JobHeartbeat.objects.get(name="heartbeat")
    assert beat.runs == 2
    assert selectors.system_health().worker.alive


def _spawn(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", *args],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


@pytest.mark.django_db(transaction=True)
def test_worker_and_beat_tick_the_heartbeat(tmp_path):
    """The dashboard's liveness is real: beat sends the heartbeat, a worker runs it."""
    schedules_install()
    # Due now, rather than one interval after beat starts.
    PeriodicTask.objects.filter(name=HEARTBEAT_TASK_NAME).update(
        last_run_at=timezone.now() - timedelta(hours=1)
    )
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}",
        "CELERY_BROKER_URL": TEST_BROKER_URL,
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    processes = [
        _spawn(
            ["worker", "--pool", "solo", "--loglevel", "INFO", "--without-mingle", "--without-gossip"],
            env,
            tmp_path / "worker.log",
        ),
        _spawn(
            ["beat", "--loglevel", "INFO", "--schedule", str(tmp_path / "beat")], env, tmp_path / "beat.log"
        ),
    ]
    try:
        deadline = time.monotonic() + 45
        health = selectors.system_health()
        while time.monotonic() < deadline and not (health.worker.alive and health.beat.alive):
            time.sleep(0.5)
            health = selectors.system_health()
        logs = "\n".join(p.read_text(errors="replace")[-2000:] for p in tmp_path.glob("*.log"))
        assert health.beat.alive, logs
        assert health.worker.alive, logs
        assert JobHeartbeat.objects.get(name="heartbeat").runs >= 1
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
