"""The benchmark's requests served through Django's WSGI handler in this process, one after
another: what the application itself costs per request, without the server, the kernel's
connections or the load generator, and without queueing. Reads the database backend's CPU
too. Used by ``manage.py bench_api --in-process N`` to compare two trees' application code
on a machine whose speed moves too much for a load run to tell small differences."""

import io
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.core.handlers.wsgi import WSGIHandler
from django.db import connection

from core.bench.cpu import process_cpu
from core.bench.loadgen import Request
from core.postgresql.trace import sent_messages

TRACED = 50  # requests whose round trips are counted, after the timed ones
# A simple query is one round trip; an extended-protocol exchange ends at its Sync.
ROUND_TRIP_MESSAGES = ("Query", "Sync")


@dataclass(frozen=True)
class Served:
    cpu_ms: float  # this process's CPU per request
    database_ms: float  # the database backend's CPU per request
    wall_ms: float
    statuses: Counter
    round_trips: float  # database round trips per request (a further, traced run)


def wsgi_environ(request: Request) -> dict:
    url = urlsplit(request.path)
    environ = {
        "REQUEST_METHOD": request.method,
        "PATH_INFO": url.path,
        "QUERY_STRING": url.query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(request.body),
        "wsgi.errors": io.StringIO(),
        "CONTENT_LENGTH": str(len(request.body)),
    }
    for name, value in request.headers.items():
        key = name.upper().replace("-", "_")
        environ[key if key == "CONTENT_TYPE" else f"HTTP_{key}"] = value
    return environ


def serve(
    make: Callable[[int], Request], requests: int, *, warm_up: Callable[[int], Request], warm_ups: int = 50
) -> Served:
    """Serves ``make(i)`` for ``i`` in ``range(requests)``, after ``warm_ups`` uncounted
    requests ``warm_up(i)``."""
    handler = WSGIHandler()
    statuses: Counter = Counter()

    def one(request: Request) -> None:
        answer: list[str] = []
        body = handler(wsgi_environ(request), lambda status, headers, exc_info=None: answer.append(status))
        b"".join(body)
        body.close()
        statuses[int(answer[0].split(" ", 1)[0])] += 1

    for i in range(warm_ups):
        one(warm_up(i))
    statuses.clear()
    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    cpu, database, wall = time.process_time(), process_cpu(backend), time.perf_counter()
    for i in range(requests):
        one(make(i))
    cpu, database, wall = (
        time.process_time() - cpu,
        process_cpu(backend) - database,
        time.perf_counter() - wall,
    )
    counted = Counter(statuses)
    traced = min(requests, TRACED)
    with sent_messages() as sent:
        for i in range(traced):
            one(warm_up(warm_ups + i))
    return Served(
        cpu_ms=cpu * 1000 / requests,
        database_ms=database * 1000 / requests,
        wall_ms=wall * 1000 / requests,
        statuses=counted,
        round_trips=sum(message.kind in ROUND_TRIP_MESSAGES for message in sent) / traced,
    )
