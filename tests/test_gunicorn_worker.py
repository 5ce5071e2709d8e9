"""The web workers (config/gunicorn_worker.py through config/gunicorn_conf.py): a connection
wakes one idle worker, not all of them, and the workers still stop on a signal at once."""

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from core.bench.server import ROOT, free_port

WORKERS = 4
REQUESTS = 60
APP = "def application(environ, start_response):\n    start_response('200 OK', [])\n    return [b'ok']\n"


def _wake_ups(master: int) -> int:
    """The workers' voluntary context switches: how often each went to sleep (and woke)."""
    total = 0
    for pid in subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout.split():
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("voluntary_ctxt_switches"):
                total += int(line.split()[1])
    return total


def _workers(master: int) -> int:
    return len(subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout.split())


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return answer.read()


def _serve(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    (tmp_path / "trivial_app.py").write_text(APP)
    port = free_port()
    command = [
        sys.executable, "-m", "gunicorn", "trivial_app", "--config", str(ROOT / "config/gunicorn_conf.py"),
        "--chdir", str(tmp_path), "--pythonpath", str(ROOT), "--bind", f"127.0.0.1:{port}",
        "--workers", str(WORKERS), "--no-control-socket", "--log-level", "warning", *extra,
    ]  # fmt: skip
    server = subprocess.Popen(command, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 30
    while True:
        try:
            _get(url)
            break
        except OSError:
            if time.monotonic() > deadline:
                server.kill()
                raise
            time.sleep(0.1)
    while _workers(server.pid) < WORKERS and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)  # every worker has reached its first wait
    return server, url


def _wake_ups_per_request(tmp_path: Path, *extra: str) -> float:
    server, url = _serve(tmp_path, *extra)
    try:
        before = _wake_ups(server.pid)
        for _ in range(REQUESTS):
            assert _get(url) == b"ok"
        return (_wake_ups(server.pid) - before) / REQUESTS
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(10)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="EPOLLEXCLUSIVE is Linux's")
def test_a_connection_wakes_one_idle_worker_not_all(tmp_path):
    ours = _wake_ups_per_request(tmp_path)
    stock = _wake_ups_per_request(tmp_path, "--worker-class", "sync")
    # gunicorn's sync workers all wake for each connection (4 workers: ~5 sleeps per request);
    # ours: the one that serves it, for the connection and for the request's bytes (~2).
    assert stock > WORKERS - 0.5
    assert ours < 3


def test_the_workers_stop_on_a_signal_at_once(tmp_path):
    server, url = _serve(tmp_path)
    assert _get(url) == b"ok"
    started = time.monotonic()
    os.killpg(server.pid, signal.SIGTERM)
    server.wait(10)
    # A worker waiting for a connection wakes on the signal, not on its 15 s heartbeat.
    assert time.monotonic() - started < 5
