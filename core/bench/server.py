"""Starts the app under gunicorn, as production serves it, for the length of a benchmark."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(url: str, timeout: float = 1) -> bool:
    try:
        urllib.request.urlopen(url, timeout=timeout)
    except urllib.error.HTTPError:
        return True  # any HTTP answer means the app is up
    except OSError:
        return False
    return True


def wait_until_idle(port: int, *, fast_ms: float = 50, timeout: float = 120) -> float:
    """Waits until a trivial request answers in under ``fast_ms`` twice in a row: requests a
    scenario left queued in the server (the generator gave up on them, the workers did not)
    would otherwise be served during the next scenario. Returns the seconds waited."""
    began = time.monotonic()
    fast = 0
    while fast < 2 and time.monotonic() - began < timeout:
        started = time.monotonic()
        answered = _answers(f"http://127.0.0.1:{port}/v1/bench-ready", timeout=timeout)
        fast = fast + 1 if answered and (time.monotonic() - started) * 1000 < fast_ms else 0
        time.sleep(0.1)
    return time.monotonic() - began


@dataclass(frozen=True)
class Server:
    port: int
    pid: int  # gunicorn's master; the workers are its children


@contextmanager
def gunicorn(
    *, env: dict[str, str], workers: int, threads: int = 1, port: int | None = None, log: Path
) -> Iterator[Server]:
    """Yields the server once the app answers; stops it (its process group) after. ``threads``
    above 1 runs gthread workers (that many requests in flight per worker) instead of sync."""
    port = port or free_port()
    command = [
        sys.executable, "-m", "gunicorn", "config.wsgi", "--config", "config/gunicorn_conf.py",
        "--bind", f"127.0.0.1:{port}",
        "--workers", str(workers),
        *(["--worker-class", "gthread", "--threads", str(threads)] if threads > 1 else []),
        "--backlog", "2048",
        "--graceful-timeout", "5",
        "--preload",  # import the app once, before forking the workers
        "--no-control-socket",  # its default path is per user, shared by every instance
    ]  # fmt: skip
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180  # a loaded machine imports slowly
        while not _answers(f"http://127.0.0.1:{port}/v1/bench-ready"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not start:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.2)
        # Each worker still loads the URLconf and its views on its first request.
        for _ in range(workers * 4):
            _answers(f"http://127.0.0.1:{port}/v1/bench-ready", timeout=60)
        yield Server(port=port, pid=process.pid)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
