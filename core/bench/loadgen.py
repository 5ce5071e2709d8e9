"""An open-loop HTTP load generator: request ``i`` is sent at ``start + i / rate`` whether or
not earlier ones have answered, and its latency is measured from that scheduled moment. A
closed-loop tool (each client waits for its answer before sending the next) sends less when
the server slows down and so hides the slowdown ("coordinated omission").

A plain asyncio protocol, one connection per request (gunicorn's sync workers close the
connection after each response), so the generator stays cheap beside the server it measures;
``manage.py bench_api`` prints its CPU per request beside the server's.
"""

import asyncio
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def encode(self, host: str) -> bytes:
        lines = [f"{self.method} {self.path} HTTP/1.1", f"Host: {host}", "Connection: close"]
        lines += [f"{name}: {value}" for name, value in self.headers.items()]
        if self.body or self.method in {"POST", "PUT", "PATCH"}:
            lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


@dataclass
class Result:
    rate: float
    duration: float
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    elapsed: float = 0.0

    @property
    def sent(self) -> int:
        return sum(self.statuses.values()) + sum(self.errors.values())

    def percentile(self, p: float) -> float | None:
        if not self.latencies_ms:
            return None
        if len(self.latencies_ms) == 1:
            return self.latencies_ms[0]
        return statistics.quantiles(self.latencies_ms, n=1000, method="inclusive")[round(p * 10) - 1]

    @property
    def throughput(self) -> float:
        """Answered requests per second of the run."""
        return len(self.latencies_ms) / self.elapsed if self.elapsed else 0.0


class _Exchange(asyncio.Protocol):
    """One request on its own connection: writes it, keeps the start of the answer (the status
    line is all we read), and is done when the server closes the connection."""

    def __init__(self, payload: bytes, done: asyncio.Future):
        self.payload, self.done, self.head = payload, done, b""

    def connection_made(self, transport) -> None:
        transport.write(self.payload)

    def data_received(self, data: bytes) -> None:
        if len(self.head) < 64:
            self.head += data

    def connection_lost(self, exc) -> None:
        if self.done.done():
            return
        if exc is None:
            self.done.set_result(self.head)
        else:
            self.done.set_exception(exc)


async def _send(host: str, port: int, payload: bytes, timeout: float) -> int:
    # A protocol and one timeout instead of streams and a wait_for per step: about half the
    # generator's CPU per request, which it shares with the server it measures.
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    transport = None
    try:
        async with asyncio.timeout(timeout):
            transport, _ = await loop.create_connection(lambda: _Exchange(payload, done), host, port)
            head = await done
    finally:
        if transport is not None:
            transport.close()
    return int(head.split(b" ", 2)[1])


async def _open_loop(
    host: str, port: int, make: Callable[[int], Request], rate: float, duration: float, timeout: float
) -> Result:
    result = Result(rate=rate, duration=duration)
    total = max(1, int(rate * duration))
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.25  # time to build every coroutine first

    async def one(i: int) -> None:
        scheduled = start + i / rate
        payload = make(i).encode(f"{host}:{port}")
        await asyncio.sleep(max(0.0, scheduled - loop.time()))
        try:
            status = await _send(host, port, payload, timeout)
        except (OSError, TimeoutError, IndexError, ValueError) as exc:
            result.errors[type(exc).__name__] += 1
            return
        result.statuses[status] += 1
        result.latencies_ms.append((loop.time() - scheduled) * 1000)

    began = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(total)))
    result.elapsed = time.perf_counter() - began
    return result


def run_open_loop(
    *,
    host: str,
    port: int,
    make: Callable[[int], Request],
    rate: float,
    duration: float,
    timeout: float = 10.0,
) -> Result:
    """Sends ``rate * duration`` requests built by ``make(i)`` at a fixed rate."""
    return asyncio.run(_open_loop(host, port, make, rate, duration, timeout))
