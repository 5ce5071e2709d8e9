"""Signed POSTs to merchants' URLs, many at once, and what came of each.

One asyncio loop per process, in a thread of its own, sends every request with aiohttp:
hundreds in flight cost one thread, and connections to an endpoint are kept alive between
deliveries and sender runs. Callers in ordinary (Django) threads hand it coroutines with
``submit`` and get ``concurrent.futures.Future`` objects back; the database stays theirs.

Redirects are not followed (a redirect could lead to an address that was never checked) and
proxies from the environment are ignored. In production every connection goes to an address
``addresses.resolve_checked`` approved: the checked session's resolver checks each address it
returns, aiohttp connects to that address and keeps the host name for TLS (SNI and
certificate) and the ``Host`` header, so DNS rebinding between check and connect does not
help. IP literals, which aiohttp does not resolve, are checked before the request. A kept-alive
connection was checked when it was opened; development uses a second, unchecked session, so
the two never share a connection.
"""

import asyncio
import atexit
import contextlib
import ipaddress
import os
import socket
import threading
import time
from collections.abc import Coroutine
from concurrent.futures import Future
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from django.conf import settings

from billing.webhooks.addresses import AddressRefused, private_allowed, resolve_checked, url_shape_problem

EXCERPT_CHARS = 1000
READ_BYTES = 4096
USER_AGENT = "Recur-Webhooks/1"


@dataclass(frozen=True)
class SendResult:
    status_code: int | None
    duration_ms: int
    excerpt: str = ""
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def timeout_seconds() -> float:
    return float(getattr(settings, "RECUR_WEBHOOK_TIMEOUT_SECONDS", 10))


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


class CheckedResolver(AbstractResolver):
    """Resolves with ``resolve_checked`` (in the loop's executor: getaddrinfo blocks), so a
    connection can only be opened to an approved address; ``AddressRefused`` passes through."""

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET) -> list[ResolveResult]:
        loop = asyncio.get_running_loop()
        addresses = await loop.run_in_executor(None, resolve_checked, host, port)
        results = []
        for address in addresses:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
            results.append(
                ResolveResult(
                    hostname=host,
                    host=address,
                    port=port,
                    family=socket.AF_INET6 if ip.version == 6 else socket.AF_INET,
                    proto=0,
                    flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
                )
            )
        return results

    async def close(self) -> None:
        return None


class Transport:
    """The process's sending loop and its two sessions (checked for production, open for
    development and tests); made on first use, again after a fork."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.tasks: set[asyncio.Task] = set()
        self.thread = threading.Thread(target=self.loop.run_forever, name="webhook-transport", daemon=True)
        self.thread.start()
        self.sessions = asyncio.run_coroutine_threadsafe(self._sessions(), self.loop).result()

    async def _sessions(self) -> dict[bool, aiohttp.ClientSession]:
        def session(resolver) -> aiohttp.ClientSession:
            # No limit of its own: the sender caps what is in flight per endpoint.
            connector = aiohttp.TCPConnector(
                limit=0, limit_per_host=0, use_dns_cache=False, resolver=resolver, keepalive_timeout=30
            )
            return aiohttp.ClientSession(
                connector=connector, trust_env=False, auto_decompress=False, skip_auto_headers=["Accept"]
            )

        return {True: session(CheckedResolver()), False: session(None)}

    def close(self) -> None:
        """Close the sessions (their kept-alive connections) and stop the loop; at exit."""

        async def close_sessions():
            for session in self.sessions.values():
                await session.close()

        if self.loop.is_running():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(close_sessions(), self.loop).result(timeout=5)
            self.loop.call_soon_threadsafe(self.loop.stop)

    def submit(self, coroutine: Coroutine) -> Future:
        return self.submit_many([coroutine])[0]

    def submit_many(self, coroutines: list[Coroutine]) -> list[Future]:
        """Start the coroutines on the loop with one wake-up (not one per request)."""
        futures = [Future() for _ in coroutines]

        async def run(coroutine: Coroutine, future: Future) -> None:
            try:
                future.set_result(await coroutine)
            except BaseException as exc:  # the caller's future carries it
                future.set_exception(exc)

        def start() -> None:
            for coroutine, future in zip(coroutines, futures, strict=True):
                task = self.loop.create_task(run(coroutine, future))
                self.tasks.add(task)  # a reference until done: the loop keeps weak ones only
                task.add_done_callback(self.tasks.discard)

        self.loop.call_soon_threadsafe(start)
        return futures

    async def post(self, *, url: str, body: bytes, headers: dict[str, str]) -> SendResult:
        """POST ``body``; never raises. The URL's shape is checked again here."""
        started = time.monotonic()
        problem = url_shape_problem(url)
        if problem:
            return SendResult(None, 0, error=f"refused: {problem}")
        checked = not private_allowed()
        timeout = timeout_seconds()
        try:
            if checked:
                parts = urlsplit(url)
                if _is_ip(parts.hostname):  # aiohttp connects to a literal without resolving it
                    resolve_checked(parts.hostname, parts.port or 443)
            async with self.sessions[checked].post(
                url,
                data=body,
                headers={"content-type": "application/json", "user-agent": USER_AGENT, **headers},
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as response:
                return await self._answer(response, started)
        except AddressRefused as exc:
            return SendResult(None, _elapsed_ms(started), error=f"refused: {exc}")
        except TimeoutError:
            return SendResult(None, _elapsed_ms(started), error=f"timeout: no answer within {timeout:g} s")
        except aiohttp.ClientError as exc:
            return SendResult(None, _elapsed_ms(started), error=f"connection failed: {exc}"[:500])
        except OSError as exc:
            return SendResult(None, _elapsed_ms(started), error=f"connection failed: {exc}"[:500])

    async def _answer(self, response: aiohttp.ClientResponse, started: float) -> SendResult:
        raw = b""
        try:
            while len(raw) < READ_BYTES:
                chunk = await response.content.read(READ_BYTES - len(raw))
                if not chunk:
                    break
                raw += chunk
            excerpt = raw.decode(response.charset or "utf-8", errors="replace")[:EXCERPT_CHARS]
        except (
            aiohttp.ClientError,
            TimeoutError,
            LookupError,
        ) as exc:  # a body that breaks off still has its status
            excerpt = f"(body unreadable: {exc})"[:EXCERPT_CHARS]
        if not response.content.at_eof():
            response.close()  # drops the connection rather than reading a long body
        return SendResult(response.status, _elapsed_ms(started), excerpt=excerpt)


_transport: tuple[int, Transport] | None = None
_lock = threading.Lock()


def transport() -> Transport:
    global _transport
    with _lock:
        if _transport is None or _transport[0] != os.getpid():
            _transport = (os.getpid(), Transport())
            atexit.register(_transport[1].close)
        return _transport[1]


def post(*, url: str, body: str, headers: dict[str, str]) -> SendResult:
    """One POST from an ordinary thread, waiting for its answer."""
    engine = transport()
    return engine.submit(engine.post(url=url, body=body.encode(), headers=headers)).result()
