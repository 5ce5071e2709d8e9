"""The pieces of ``manage.py bench_webhooks``: the receiver and worker processes it starts,
the raw-POST floor, and the latency arithmetic."""

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import requests
from django.conf import settings
from django.db import connection
from standardwebhooks import Webhook

from config.celery import app as celery_app

ROOT = Path(settings.BASE_DIR)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ReceiverProcess:
    """``billing.webhooks.bench_receiver`` on ``port``, knowing the endpoints' secrets."""

    def __init__(self, *, port: int, secrets: dict[str, str], verify_every: int):
        self.dir = tempfile.TemporaryDirectory(prefix="bench-receiver-")
        secrets_file = Path(self.dir.name) / "secrets.json"
        secrets_file.write_text(json.dumps(secrets))
        self.log = Path(self.dir.name) / "receiver.log"
        self.base = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "billing.webhooks.bench_receiver",
                "--secrets",
                str(secrets_file),
                "--port",
                str(port),
                "--verify-every",
                str(verify_every),
            ],
            cwd=ROOT,
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait_listening()

    def _wait_listening(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the receiver exited:\n{self.log.read_text()[-2000:]}")
            if "listening" in self.log.read_text():
                return
            time.sleep(0.05)
        raise RuntimeError("the receiver did not start listening")

    def stats(self) -> dict:
        return requests.get(f"{self.base}/_stats", timeout=10).json()

    def arrivals(self) -> list[tuple[float, str, str, str]]:
        return [tuple(a) for a in requests.get(f"{self.base}/_arrivals", timeout=60).json()]

    def reset(self) -> None:
        requests.post(f"{self.base}/_reset", timeout=10).raise_for_status()

    def url(self, name: str) -> str:
        return f"{self.base}/ep/{name}"

    def stop(self) -> None:
        _stop(self.process)
        self.dir.cleanup()


class WorkerProcesses:
    """Real Celery workers on a queue of their own, against this process's database."""

    def __init__(
        self,
        *,
        count: int,
        pool: str,
        concurrency: int,
        queue: str,
        include: list[str],
        send_workers: int = 0,
    ):
        """``send_workers`` of the ``count`` read only the sender's queue and the others only the
        main one, as a deployment with ``RECUR_WEBHOOK_QUEUE`` runs them (0: all read both)."""
        self.dir = tempfile.TemporaryDirectory(prefix="bench-workers-")
        db = connection.settings_dict
        password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": (
                f"postgres://{db['USER']}{password}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"
            ),
            "CELERY_BROKER_URL": str(celery_app.conf.broker_url),
            # this process's cache: the dispatcher and sender clear the debounce flags that
            # this process sets (under pytest that is the tests' Redis database, not REDIS_DB)
            **cache_env(),
            "CELERY_TASK_DEFAULT_QUEUE": queue,
            # the sender and sweep on a queue of their own, as in production: a backlog of
            # sends never holds back the next events' dispatch
            "RECUR_WEBHOOK_QUEUE": f"{queue}-send",
        }
        includes = [arg for module in include for arg in ("--include", module)]
        self.logs = [Path(self.dir.name) / f"worker{i}.log" for i in range(count)]
        self.processes = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "config",
                    "worker",
                    "--pool",
                    pool,
                    "--concurrency",
                    str(concurrency),
                    "--queues",
                    self._queues(i, count, send_workers, queue),
                    "--hostname",
                    f"bench{i}-{queue}@%h",
                    "--without-mingle",
                    "--without-gossip",
                    "--without-heartbeat",
                    "--loglevel",
                    "WARNING",
                    *includes,
                ],
                cwd=ROOT,
                env=env,
                stdout=log.open("wb"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            for i, log in enumerate(self.logs)
        ]

    @staticmethod
    def _queues(i: int, count: int, send_workers: int, queue: str) -> str:
        if not 0 < send_workers < count:
            return f"{queue},{queue}-send"
        return f"{queue}-send" if i >= count - send_workers else queue

    def check_alive(self) -> None:
        for process, log in zip(self.processes, self.logs, strict=True):
            if process.poll() is not None:
                raise RuntimeError(f"a worker exited:\n{log.read_text(errors='replace')[-3000:]}")

    def output(self) -> str:
        return "\n".join(log.read_text(errors="replace")[-2000:] for log in self.logs)

    def stop(self) -> None:
        for process in self.processes:
            _stop(process)
        self.dir.cleanup()


def cache_env() -> dict[str, str]:
    """The environment that gives a child process this process's default cache."""
    default = settings.CACHES["default"]
    return {"CACHE_URL": str(default["LOCATION"]), "CACHE_KEY_PREFIX": default.get("KEY_PREFIX", "")}


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def raw_post_floor(*, url: str, secret: str, body: bytes, count: int, threads: int) -> float:
    """Signed POSTs per second the receiver absorbs from one process with ``requests``
    (pooled sessions, ``threads`` at a time): what no delivery engine in Python can beat."""
    hook = Webhook(secret)

    def post_many(n: int) -> None:
        with requests.Session() as session:
            for i in range(n):
                stamp = datetime.now(UTC)
                msg_id = f"msg_floor_{i}"
                headers = {
                    "webhook-id": msg_id,
                    "webhook-timestamp": str(int(stamp.timestamp())),
                    "webhook-signature": hook.sign(msg_id, stamp, body.decode()),
                    "content-type": "application/json",
                }
                session.post(url, data=body, headers=headers, timeout=10).raise_for_status()

    shares = [count // threads + (1 if i < count % threads else 0) for i in range(threads)]
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(post_many, shares))
    return count / (time.perf_counter() - started)


def async_post_floor(*, url: str, secret: str, body: bytes, count: int, concurrency: int) -> float:
    """Signed POSTs per second the receiver absorbs from one process with aiohttp, the
    sender's own client, ``concurrency`` in flight on kept-alive connections and nothing
    else to do (no database, no claims): the ceiling of one sender process on this machine."""
    hook = Webhook(secret)
    text = body.decode()

    async def post_many(session: aiohttp.ClientSession, n: int, worker: int) -> None:
        for i in range(n):
            stamp = datetime.now(UTC)
            msg_id = f"msg_floor_{worker}_{i}"
            headers = {
                "webhook-id": msg_id,
                "webhook-timestamp": str(int(stamp.timestamp())),
                "webhook-signature": hook.sign(msg_id, stamp, text),
                "content-type": "application/json",
            }
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                response.raise_for_status()

    async def run() -> float:
        shares = [count // concurrency + (1 if i < count % concurrency else 0) for i in range(concurrency)]
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector, trust_env=False) as session:
            started = time.perf_counter()
            await asyncio.gather(*(post_many(session, n, i) for i, n in enumerate(shares)))
            return count / (time.perf_counter() - started)

    return asyncio.run(run())


@dataclass(frozen=True)
class Latencies:
    """Seconds from an event's commit to its arrival at the receiver."""

    values: list[float]
    missing: int

    def percentile(self, p: float) -> float:
        if not self.values:
            return float("nan")
        ordered = sorted(self.values)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    def share_within(self, seconds: float) -> float:
        total = len(self.values) + self.missing
        return sum(1 for v in self.values if v <= seconds) / total if total else 0.0


def latencies(
    committed: dict[str, float], arrivals: list[tuple[float, str, str, str]], endpoints: list[str]
) -> tuple[Latencies, Latencies]:
    """(per delivery, per event once every endpoint has it): the first arrival of each
    (event, endpoint) counts; what never arrived counts as late."""
    first: dict[tuple[str, str], float] = {}
    for received, name, event_id, _ in arrivals:
        key = (event_id, name)
        if event_id in committed and (key not in first or received < first[key]):
            first[key] = received
    per_delivery, per_event, missing_deliveries, missing_events = [], [], 0, 0
    for event_id, commit in committed.items():
        got = [first.get((event_id, name)) for name in endpoints]
        per_delivery += [t - commit for t in got if t is not None]
        missing_deliveries += sum(1 for t in got if t is None)
        if all(t is not None for t in got):
            per_event.append(max(got) - commit)
        else:
            missing_events += 1
    return Latencies(per_delivery, missing_deliveries), Latencies(per_event, missing_events)


def duplicates(arrivals: list[tuple[float, str, str, str]]) -> int:
    """Arrivals beyond the first of one event at one endpoint (at-least-once repeats)."""
    seen: set[tuple[str, str]] = set()
    repeats = 0
    for _, name, event_id, _ in arrivals:
        repeats += (event_id, name) in seen
        seen.add((event_id, name))
    return repeats


STAGES_SQL = """
SELECT
  percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (ORDER BY extract(epoch FROM d.created_at - e.occurred_at)),
  percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (ORDER BY extract(epoch FROM d.delivered_at - d.created_at)),
  count(*) FILTER (WHERE d.status <> 'delivered'),
  avg(d.attempts)
FROM webhooks_webhookdelivery d JOIN events_event e ON e.id = d.event_id
WHERE d.organization_id = %s AND e.id > %s
"""


def stage_profile(*, organization_id, after_event_id: int) -> str:
    """Where the time went, from the rows: event recorded -> its delivery rows written (outbox
    dispatch and the consumer), and delivery row written -> marked delivered (the sender)."""
    with connection.cursor() as cursor:
        cursor.execute(STAGES_SQL, [organization_id, after_event_id])
        to_rows, to_sent, open_rows, attempts = cursor.fetchone()
    if to_rows is None:
        return "no delivery rows"
    ms = [round(v * 1000) for v in (*to_rows, *(to_sent or (0, 0)))]
    return (
        f"event -> delivery rows p50 {ms[0]:,} ms / p95 {ms[1]:,} ms; "
        f"rows -> delivered p50 {ms[2]:,} ms / p95 {ms[3]:,} ms; "
        f"{open_rows:,} not delivered; {attempts or 0:.2f} attempts each"
    )


def queue_backlog(queue: str) -> int:
    """Tasks waiting on the benchmark's queue (Redis broker)."""
    with celery_app.connection_for_write() as conn:
        return conn.default_channel.client.llen(queue)


def queue_delete(queue: str) -> None:
    """Drop the benchmark's queue and what is left on it, so no task outlives the run."""
    with celery_app.connection_for_write() as conn:
        conn.default_channel.queue_delete(queue)
