"""Django's PostgreSQL backend, with a cheaper check of a reused connection.

With ``CONN_HEALTH_CHECKS`` Django checks a persistent connection before its first use in
each request, by sending ``SELECT 1``: a round trip on every API request, a tenth of what a
light request costs. An idle connection's socket has nothing to read: the server sends
nothing between queries unless it is going away (a restart or ``pg_terminate_backend``
sends its reason and closes; a killed server closes). So an idle connection whose socket
is readable, or has hung up, is unusable, and one that is not needs no query. Inside a
transaction, or in any state but idle, Django's own check runs.
"""

import select

from django.db.backends.postgresql import base
from psycopg import pq


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        connection = self.connection
        if connection is None or connection.closed or connection.broken:
            return False
        if connection.info.transaction_status != pq.TransactionStatus.IDLE:
            return super().is_usable()
        poller = select.poll()  # not select(): it refuses descriptors above 1023
        try:
            poller.register(connection.fileno(), select.POLLIN | select.POLLPRI)
            ready = poller.poll(0)
        except (OSError, ValueError):
            return False
        return not ready
