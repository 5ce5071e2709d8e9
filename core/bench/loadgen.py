"""An open-loop HTTP load generator: request ``i`` is sent at ``start + i / rate`` whether or
not earlier ones have answered, and its latency is measured from that scheduled moment. A
closed-loop tool (each client waits for its answer before sending the next) sends less when
the server slows down and so hides the slowdown ("coordinated omission").

Plain asyncio streams, one connection per request (gunicorn's sync workers close the
connection after each response), so the generator stays cheap beside the server it measures.
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


async def _send(host: str, port: int, payload: bytes, timeout: float) -> int:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    try:
        writer.write(payload)
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), timeout)
        await asyncio.wait_for(reader.read(), timeout)  # the server closes after the body
        return int(status_line.split()[1])
    finally:
        writer.close()


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
