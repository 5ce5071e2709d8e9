"""Real Celery worker processes against the test database, for crash tests."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.db import connection

from config.celery import app
from tests.redis_urls import TEST_BROKER_URL

ROOT = Path(__file__).resolve().parents[1]
WORKER_OPTIONS = (
    "--pool",
    "solo",
    "--loglevel",
    "INFO",
    "--without-mingle",
    "--without-gossip",
    "--without-heartbeat",
)


def worker_env(**extra: str) -> dict[str, str]:
    db = connection.settings_dict
    return {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}",
        "CELERY_BROKER_URL": TEST_BROKER_URL,
        # the tests' cache: debounce flags this process sets are the ones the worker clears
        "CACHE_URL": settings.CACHES["default"]["LOCATION"],
        "CACHE_KEY_PREFIX": settings.CACHES["default"].get("KEY_PREFIX", ""),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        **extra,
    }


class Worker:
    """``celery worker --pool solo``: the task runs in the worker's own process, so a crash point
    kills the whole worker, as an out-of-memory kill would."""

    def __init__(self, log: Path, **env: str):
        self.log = log
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", *WORKER_OPTIONS],
            cwd=ROOT,
            env=worker_env(**env),
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def wait_for_death(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(f"the worker did not crash:\n{self.output()}") from exc

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)


def send(task_name: str, *args) -> None:
    """Put a task on the test broker for a real worker (never run in this process)."""
    saved = app.conf.task_always_eager
    app.conf.task_always_eager = False
    try:
        app.send_task(task_name, args=list(args))
    finally:
        app.conf.task_always_eager = saved


def wait_until(condition, timeout: float, message) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(message() if callable(message) else message)
        time.sleep(0.3)
