"""pytest plugin: a localstripe server for the test session.

Fixtures:

``localstripe`` (session)
    Starts ``localstripe --port N --from-scratch`` on a free port and yields a
    :class:`LocalStripeServer` (``.url``, ``.port``, ``.reset()``,
    ``.register_webhook()``, ``.unregister_webhook()``, ``.output()``).

``stripe_client`` (function)
    Points stripe-python's global configuration at that server for one test and
    yields the ``stripe`` module.

Store isolation: localstripe 1.15 pickles its whole store to the hard-coded path
``/tmp/localstripe.pickle`` after every write (``Store.dump_to_disk`` in
``localstripe/resources.py``), even with ``--from-scratch`` (that flag only skips the
initial load). The path ignores the working directory, ``TMPDIR`` and ``HOME``, so a
second instance would overwrite a developer's ``make run`` store (and ``reset()`` would
empty it). The test instance is therefore started through scripts/localstripe_server.py
with ``--no-store``: it never reads or writes any file.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

START_TIMEOUT = 20.0  # seconds
POLL_INTERVAL = 0.05
REQUEST_TIMEOUT = 2.0

LAUNCHER = Path(__file__).resolve().parents[2] / "scripts" / "localstripe_server.py"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LocalStripeServer:
    port: int
    process: subprocess.Popen
    log_path: Path
    webhook_ids: set[str] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://localhost:{self.port}"

    def output(self) -> str:
        """The server's stdout+stderr so far (aiohttp access log, webhook delivery log)."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def _request(self, method: str, path: str, payload: dict | None = None) -> int:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT) as response:
            return response.status

    def reset(self) -> None:
        """Empty the store (``DELETE /_config/data``). Registered webhooks survive: they
        live outside the store in localstripe."""
        self._request("DELETE", "/_config/data")

    def register_webhook(
        self, webhook_id: str, url: str, secret: str, events: list[str] | None = None
    ) -> None:
        """``POST /_config/webhooks/<id>``; ``events=None`` means every event type.
        Registering the same id again replaces the target."""
        payload: dict = {"url": url, "secret": secret}
        if events is not None:
            payload["events"] = list(events)
        self._request("POST", f"/_config/webhooks/{webhook_id}", payload)
        self.webhook_ids.add(webhook_id)

    def unregister_webhook(self, webhook_id: str) -> None:
        """localstripe has no delete endpoint: re-register the id with an empty event list."""
        self._request(
            "POST",
            f"/_config/webhooks/{webhook_id}",
            {"url": "http://127.0.0.1:9/", "secret": "unused", "events": []},
        )
        self.webhook_ids.discard(webhook_id)

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def _wait_until_up(server: LocalStripeServer, deadline: float) -> bool:
    """True once the server answers; False if the process exits first."""
    probe = f"http://127.0.0.1:{server.port}/js.stripe.com/v3/"  # no auth, no store access
    while time.monotonic() < deadline:
        if not server.alive():
            return False
        with contextlib.suppress(OSError), urllib.request.urlopen(probe, timeout=0.5) as response:
            if response.status == 200:
                return True
        time.sleep(POLL_INTERVAL)
    return False


def start_localstripe(log_dir: Path, attempts: int = 3) -> LocalStripeServer:
    """Start a store-isolated localstripe on a free port (retrying if the port was taken)."""
    # Same venv as the test run; the venv's ``localstripe`` script sits next to it.
    python = sys.executable
    deadline = time.monotonic() + START_TIMEOUT
    failures = []
    for attempt in range(1, attempts + 1):
        port = _free_port()
        log_path = log_dir / f"localstripe-{port}.log"
        with open(log_path, "wb") as log:  # a file, not a pipe: the access log never blocks
            process = subprocess.Popen(
                [python, str(LAUNCHER), "--no-store", "--port", str(port), "--from-scratch"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=log_dir,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        server = LocalStripeServer(port=port, process=process, log_path=log_path)
        if _wait_until_up(server, deadline):
            return server
        exited = not server.alive()
        server.stop()
        output = server.output()
        status = f"exited with code {process.returncode}" if exited else "no answer, stopped"
        failures.append(f"--- attempt {attempt}, port {port}: {status} ---\n{output}")
        # Only a lost race for the port is worth another try.
        if "address already in use" not in output.lower() or time.monotonic() >= deadline:
            break
    raise RuntimeError(
        f"localstripe did not start (it exited, or did not answer within {START_TIMEOUT:.0f} s):\n"
        + "\n".join(failures)
    )


@pytest.fixture(scope="session")
def localstripe(tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("localstripe")
    try:
        server = start_localstripe(log_dir)
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def stripe_client(localstripe, settings):
    """stripe-python pointed at the session's localstripe for one test."""
    import stripe

    saved = (stripe.api_base, stripe.api_key, stripe.max_network_retries)
    settings.STRIPE_API_HOST = localstripe.url
    stripe.api_base = localstripe.url
    stripe.api_key = settings.STRIPE_TEST_SECRET_KEY
    # localstripe ignores Idempotency-Key, so a retried POST would create a duplicate;
    # and failures should be fast.
    stripe.max_network_retries = 0
    try:
        yield stripe
    finally:
        stripe.api_base, stripe.api_key, stripe.max_network_retries = saved


__all__ = ["LocalStripeServer", "localstripe", "start_localstripe", "stripe_client"]
