"""Django's PostgreSQL backend, with a cheaper check of a reused connection, psycopg's own
(compiled) reader of ``timestamptz`` columns, and the SELECT and ORDER BY clauses of plain
queries compiled once per shape (``core/postgresql/compiler.py``).

Health check. With ``CONN_HEALTH_CHECKS`` Django checks a persistent connection before its
first use in each request, by sending ``SELECT 1``: a round trip on every API request, a tenth
of what a light request costs. An idle connection's socket has nothing to read: the server
sends nothing between queries unless it is going away (a restart or ``pg_terminate_backend``
sends its reason and closes; a killed server closes). So an idle connection whose socket is
readable, or has hung up, is unusable, and one that is not needs no query. Inside a
transaction, or in any state but idle, Django's own check runs.

Timestamps. Django registers its own ``timestamptz`` loader on every connection, a Python
subclass of psycopg's pure-Python loader that replaces the tzinfo with the connection's time
zone; with psycopg's binary build installed, psycopg's default loader is compiled and gives
the same value when that zone is UTC (Django sets the session's ``TimeZone`` to it, and
psycopg answers a UTC session with ``datetime.timezone.utc``, the object Django uses).
About 5 µs saved per timestamp read: 40 in a page of 20 customers.

Transactions begin with their first statement. psycopg, out of autocommit, sends ``BEGIN``
on its own before a transaction's first statement: a round trip of its own on every
transaction (a create is claim, BEGIN, two INSERTs, COMMIT, completion). Here psycopg stays
in autocommit; Django's autocommit state is kept on the connection as the ``BEGIN`` it wants
sent, and the cursor sends it with the transaction's first statement as one query string
(``BEGIN; INSERT ...``, which client-side binding, Django's default, allows) and moves on to
that statement's result. Whether a transaction is open is the server's word
(``transaction_status``), as it is for psycopg's own ``BEGIN``, ``COMMIT`` and ``ROLLBACK``:
a transaction that ran no statement costs nothing, its ``COMMIT`` is skipped as psycopg
skips it. Savepoints the same: ``SAVEPOINT`` and ``RELEASE SAVEPOINT`` wait on the connection
and go with the next statement, and a savepoint that saw no statement is never sent (nor its
rollback). What cannot carry a prefix (``executemany``, ``COPY``, a named cursor's
``DECLARE``) sends what waits alone first. An error raised before the string was sent
(adapting a value) leaves what waited waiting. One difference from Django's own: a statement
that does not parse, sent with a savepoint that waited, aborts the enclosing transaction,
since the savepoint was never made to roll back to; Django then refuses the block's further
queries (``TransactionManagementError``) and rolls it back whole. The ORM does not write such
statements; raw SQL with a syntax error is a bug either way. With ``server_side_binding`` or a
connection pool in the database's OPTIONS, Django's own handling is kept.

Settings for one statement (``statement_settings``): ``SET LOCAL`` waits the same way and goes
in the statement's own query string, which outside a transaction is one implicit transaction
that ends the settings with it: a statement timeout or a planner setting for one read costs no
round trip (the plan guard, ``core/postgresql/plans.py``).
"""

import re
import select
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC
from functools import cache

from django.conf import settings
from django.db.backends.postgresql import base, operations
from django.db.backends.postgresql.psycopg_any import get_adapters_template, register_tzloader
from psycopg import adapt, adapters, pq
from psycopg.postgres import types

TIMESTAMPTZ = types["timestamptz"].oid
# psycopg's loader before Django's: the compiled one with the binary build, else the Python one.
PSYCOPG_TZ_LOADER = adapters.get_loader(TIMESTAMPTZ, pq.Format.TEXT)


@cache
def _utc_adapters() -> adapt.AdaptersMap:
    """Django's adapters for a UTC connection, with psycopg's own timestamptz loader."""
    context = adapt.AdaptersMap(get_adapters_template(True, UTC))
    context.register_loader(TIMESTAMPTZ, PSYCOPG_TZ_LOADER)
    return context


IDLE = pq.TransactionStatus.IDLE
INTRANS = pq.TransactionStatus.INTRANS
SETTING_NAME = re.compile(r"[a-z_]+")


def _unsent(connection) -> list[str]:
    """What Django's transaction has asked for and the server has not had yet: its ``BEGIN``
    (while none is open) and the savepoint statements since the last statement sent."""
    unsent = list(getattr(connection, "deferred", ()))
    begin = getattr(connection, "begin_statement", None)
    if begin is not None and connection.info.transaction_status == IDLE:
        unsent.insert(0, begin)
    return unsent


def _send_unsent(connection) -> None:
    unsent = _unsent(connection)
    if unsent:
        connection.deferred = []
        with base.Cursor(connection) as cursor:
            cursor.execute("; ".join(unsent))


def _begin_statement(connection) -> str:
    """``BEGIN`` with what psycopg would add to its own (the isolation level Django sets from
    OPTIONS, read-only, deferrable)."""
    parts = ["BEGIN"]
    if connection.isolation_level is not None:
        parts.append("ISOLATION LEVEL " + connection.isolation_level.name.replace("_", " "))
    if connection.read_only is not None:
        parts.append("READ ONLY" if connection.read_only else "READ WRITE")
    if connection.deferrable is not None:
        parts.append("DEFERRABLE" if connection.deferrable else "NOT DEFERRABLE")
    return " ".join(parts)


class Cursor(base.Cursor):
    """Django's cursor, which sends what waits (a wanted ``BEGIN``, savepoints) with the next
    statement."""

    def execute(self, query, params=None, **kwargs):
        connection = self.connection
        unsent = _unsent(connection)
        if not unsent:
            return super().execute(query, params, **kwargs)
        if not isinstance(query, str):  # a composed query: sent after the rest
            _send_unsent(connection)
            return super().execute(query, params, **kwargs)
        status, deferred = connection.info.transaction_status, connection.deferred
        connection.deferred = []
        try:
            super().execute("; ".join([*unsent, query]), params, **kwargs)
        except Exception:
            # An unchanged state: nothing ran (refused before it was sent, or no BEGIN took).
            if connection.info.transaction_status == status:
                connection.deferred = deferred
            raise
        for _ in unsent:  # their results come first
            self.nextset()
        return self

    def executemany(self, query, params_seq, **kwargs):
        _send_unsent(self.connection)
        return super().executemany(query, params_seq, **kwargs)

    def copy(self, statement, params=None, **kwargs):
        _send_unsent(self.connection)
        return super().copy(statement, params, **kwargs)

    def stream(self, query, params=None, **kwargs):
        _send_unsent(self.connection)
        return super().stream(query, params, **kwargs)


class DatabaseOperations(operations.DatabaseOperations):
    compiler_module = "core.postgresql.compiler"


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations

    @property
    def _begins_with_first_statement(self) -> bool:
        options = self.settings_dict["OPTIONS"]
        return options.get("server_side_binding") is not True and not options.get("pool")

    def get_connection_params(self) -> dict:
        params = super().get_connection_params()
        if settings.USE_TZ and self.timezone is UTC:
            params["context"] = _utc_adapters()
        if self._begins_with_first_statement:
            params["cursor_factory"] = Cursor
        return params

    def get_new_connection(self, conn_params):
        connection = super().get_new_connection(conn_params)
        if self._begins_with_first_statement:
            connection.autocommit = True  # for good: BEGIN is the cursor's (_set_autocommit)
            connection.deferred = []
        return connection

    def _set_autocommit(self, autocommit: bool) -> None:
        if not self._begins_with_first_statement:
            return super()._set_autocommit(autocommit)
        self.connection.begin_statement = None if autocommit else _begin_statement(self.connection)

    # Savepoints wait for the next statement too; one that saw no statement is never sent.
    # Django nests them last in, first out, so what waits after a savepoint lies inside it.

    def _savepoint(self, sid) -> None:
        if not self._begins_with_first_statement:
            return super()._savepoint(sid)
        self.connection.deferred.append(self.ops.savepoint_create_sql(sid))

    def _unsent_savepoint(self, sid) -> int | None:
        """Where the savepoint's creation waits among the unsent statements, if it does."""
        try:
            return self.connection.deferred.index(self.ops.savepoint_create_sql(sid))
        except ValueError:
            return None

    def _savepoint_commit(self, sid) -> None:
        if not self._begins_with_first_statement:
            return super()._savepoint_commit(sid)
        unsent = self._unsent_savepoint(sid)
        if unsent is not None:  # no statement ran inside it
            del self.connection.deferred[unsent:]
        else:
            self.connection.deferred.append(self.ops.savepoint_commit_sql(sid))

    def _savepoint_rollback(self, sid) -> None:
        if not self._begins_with_first_statement:
            return super()._savepoint_rollback(sid)
        unsent = self._unsent_savepoint(sid)
        if unsent is not None:
            # Undo what waits inside it; its creation stays (Django releases it next).
            del self.connection.deferred[unsent + 1 :]
            return
        self.connection.deferred.clear()  # all inside the savepoint, undone with it
        super()._savepoint_rollback(sid)

    def _commit(self):
        if self.connection is not None and self._begins_with_first_statement:
            self.connection.deferred.clear()  # COMMIT releases every savepoint
        return super()._commit()

    def _rollback(self):
        if self.connection is not None and self._begins_with_first_statement:
            self.connection.deferred.clear()
        return super()._rollback()

    @contextmanager
    def statement_settings(self, **values: str) -> Iterator[None]:
        """The block's first statement runs with these server settings (``SET LOCAL``), sent
        with it in one query string. Outside a transaction the two are one implicit
        transaction, whose end ends the settings; inside one, setting them back (``TO
        DEFAULT``: the session's own value) goes with the next statement. The block's other
        statements run as before. With ``server_side_binding`` or a pool, the settings are set
        before the block and reset after it, for all of its statements."""
        for name in values:
            if not SETTING_NAME.fullmatch(name):
                raise ValueError(f"Not a setting's name: {name!r}")
        self.ensure_connection()
        if not self._begins_with_first_statement:
            with self.cursor() as cursor:
                for name, value in values.items():
                    cursor.execute("SELECT set_config(%s, %s, false)", [name, value])
            try:
                yield
            finally:
                if self.connection.info.transaction_status in (IDLE, INTRANS):  # else rolled back
                    with self.cursor() as cursor:
                        for name in values:  # one statement each: server-side binding
                            cursor.execute(f"RESET {name}")
            return
        quoted = {name: "'" + str(value).replace("'", "''") + "'" for name, value in values.items()}
        sets = [f"SET LOCAL {name} = {value}" for name, value in quoted.items()]
        self.connection.deferred.extend(sets)
        try:
            yield
        finally:
            deferred = self.connection.deferred
            unsent = [s for s in deferred if any(s is mine for mine in sets)]
            if unsent:  # no statement ran in the block
                deferred[:] = [s for s in deferred if not any(s is mine for mine in unsent)]
            elif self.connection.info.transaction_status == INTRANS:
                deferred.extend(f"SET LOCAL {name} TO DEFAULT" for name in values)

    def create_cursor(self, name=None):
        # Django's create_cursor, but for two things: a named cursor is holdable only outside
        # a transaction as Django sees it (psycopg's connection is always in autocommit here),
        # and the loader check: Django asks the connection's loader for its time zone, which
        # psycopg's has no attribute for.
        withhold = self.get_autocommit()
        if name:
            _send_unsent(self.connection)  # DECLARE inside the transaction
        if name and self.settings_dict["OPTIONS"].get("server_side_binding") is not True:
            cursor = base.ServerSideCursor(self.connection, name=name, scrollable=False, withhold=withhold)
        elif name:
            cursor = self.connection.cursor(name, scrollable=False, withhold=withhold)
        else:
            cursor = self.connection.cursor()
        loader = self.connection.adapters.get_loader(TIMESTAMPTZ, pq.Format.TEXT)
        zone = UTC if loader is PSYCOPG_TZ_LOADER else loader.timezone
        if self.timezone != zone:  # the time zone changed since the connection was made
            register_tzloader(self.timezone, cursor)
        return cursor

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
