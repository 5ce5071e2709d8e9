"""What one connection sends to the server, read off libpq's protocol trace: for tests that
count round trips and for the benchmark's count of them. Tracing costs CPU: not for timed runs."""

import contextlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

from django.db import connection as default_connection
from psycopg import pq


@dataclass(frozen=True)
class Message:
    kind: str  # "Query", "Parse", "Sync", ...
    text: str  # the rest of the traced line (a Query's string, quoted)

    @property
    def query(self) -> str:
        return self.text.strip().strip('"')


@contextlib.contextmanager
def sent_messages(connection=default_connection) -> Iterator[list[Message]]:
    """Yields a list that holds, once the block ends, the messages the connection sent in it."""
    connection.ensure_connection()
    pgconn = connection.connection.pgconn
    sent: list[Message] = []
    with tempfile.TemporaryFile(mode="w+") as trace:
        pgconn.trace(trace.fileno())
        pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
        try:
            yield sent
        finally:
            pgconn.untrace()
            trace.seek(0)
            for line in trace:
                direction, _, kind, *rest = line.rstrip("\n").split("\t", 3)
                if direction == "F":
                    sent.append(Message(kind, rest[0] if rest else ""))


@contextlib.contextmanager
def sent_queries(connection=default_connection) -> Iterator[list[str]]:
    """Yields a list that holds, once the block ends, the query strings the connection sent
    in it (one per round trip)."""
    queries: list[str] = []
    with sent_messages(connection) as sent:
        yield queries
    queries.extend(m.query for m in sent if m.kind in ("Query", "Parse"))
