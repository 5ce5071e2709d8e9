"""An open-loop HTTP load generator: request ``i`` is sent at ``start + i / rate`` whether or
not earlier ones have answered, and its latency is measured from that scheduled moment. A
closed-loop tool (each client waits for its answer before sending the next) sends less when
the server slows down and so hides the slowdown ("coordinated omission").

Non-blocking sockets on one epoll set, one connection per request (gunicorn's sync workers
close the connection after each response), so the generator stays cheap beside the server it
measures; ``manage.py bench_api`` prints its CPU per request beside the server's.
"""

import errno
import os
import selectors
import socket
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


@dataclass
class _Exchange:
    """One request on its own connection: connect, write the request, keep the start of the
    answer (the status line is all we read), done when the server closes the connection."""

    index: int
    sock: socket.socket
    payload: bytes
    deadline: float
    head: bytes = b""
    sent: bool = False


def _status(head: bytes) -> int:
    return int(head.split(b" ", 2)[1])


def _error_name(code: int) -> str:
    """The name of the exception a blocking socket would have raised for ``code``."""
    return type(OSError(code, os.strerror(code))).__name__  # OSError picks the subclass


def _open_loop(
    host: str, port: int, make: Callable[[int], Request], rate: float, duration: float, timeout: float
) -> Result:
    """One thread and one epoll set. An asyncio loop (a transport, a protocol, a future and a
    timeout per request) cost 0.8 ms of CPU per request here, taken from the two cores the
    server it measures runs on; this loop does the same work with a few system calls."""
    result = Result(rate=rate, duration=duration)
    total = max(1, int(rate * duration))
    payloads = [make(i).encode(f"{host}:{port}") for i in range(total)]
    address = (host, port)
    poller = selectors.DefaultSelector()
    open_: dict[int, _Exchange] = {}
    start = time.perf_counter() + 0.05
    next_index = 0

    def finish(exchange: _Exchange, error: str | None = None) -> None:
        poller.unregister(exchange.sock)
        exchange.sock.close()
        del open_[id(exchange.sock)]
        if error is None:
            try:
                status = _status(exchange.head)
            except (IndexError, ValueError) as exc:
                error = type(exc).__name__
            else:
                result.statuses[status] += 1
                scheduled = start + exchange.index / rate
                result.latencies_ms.append((time.perf_counter() - scheduled) * 1000)
                return
        result.errors[error] += 1

    while next_index < total or open_:
        now = time.perf_counter()
        while next_index < total and start + next_index / rate <= now:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            code = sock.connect_ex(address)
            exchange = _Exchange(next_index, sock, payloads[next_index], start + next_index / rate + timeout)
            next_index += 1
            if code not in (0, errno.EINPROGRESS):
                sock.close()
                result.errors[_error_name(code)] += 1
                continue
            open_[id(sock)] = exchange
            poller.register(sock, selectors.EVENT_WRITE, exchange)
        wait = (start + next_index / rate - now) if next_index < total else 0.05
        for key, _ in poller.select(max(0.0, min(wait, 0.05))):
            exchange = key.data
            if not exchange.sent:
                code = exchange.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if code:
                    finish(exchange, _error_name(code))
                    continue
                try:
                    exchange.sock.sendall(exchange.payload)  # a few hundred bytes: the buffer takes them
                except OSError as exc:
                    finish(exchange, type(exc).__name__)
                    continue
                exchange.sent = True
                poller.modify(exchange.sock, selectors.EVENT_READ, exchange)
                continue
            try:
                data = exchange.sock.recv(65536)
            except OSError as exc:
                finish(exchange, type(exc).__name__)
                continue
            if data:
                if len(exchange.head) < 64:
                    exchange.head += data
            else:
                finish(exchange)
        now = time.perf_counter()
        # Open in the order they were sent, so the deadlines are in order too.
        while open_ and (oldest := next(iter(open_.values()))).deadline < now:
            finish(oldest, TimeoutError.__name__)
    poller.close()
    result.elapsed = time.perf_counter() - start
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
    return _open_loop(host, port, make, rate, duration, timeout)
