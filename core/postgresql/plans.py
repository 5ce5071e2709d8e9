"""Reads whose plan the statistics can misjudge: cut short, and run again through the indexes.

A page of a text search (``WHERE name ILIKE '%term%' ORDER BY created_at DESC LIMIT 21``) has
two plans. Walking the ``created_at`` index newest first and filtering stops after 21 matches:
right when matches are many. Reading the trigram index for every match and sorting them is
right when they are few. The planner picks by its estimate of how many rows match, and for a
substring that estimate comes from the hundred or so values ANALYZE kept of the column: a term
that matches one of them is taken to match 1% of the table. A customer's own e-mail address is
such a term about one time in ten thousand at a million customers (101 values kept), and then
the walk reads the whole table for its one row (0.45-0.85 s, docs/benchmarks.md).

``guard_plan(queryset)`` marks a queryset: a fetch of it with a limit (a page, ``first()``,
``exists()``) runs with a statement timeout; if it overruns, it runs once more with the walk
(index scans in order, sequential scans) disabled, so that the table is read through the
bitmap of its indexes. Past the timeout the walk has read tens of thousands of rows without
filling a page, so its matches are few and the index finds them in a few milliseconds. A plan
that was already the index's loses the timeout's milliseconds and runs again the same: the
other plan is not tried, since an index that gives many candidates for few matches (a
common trigram) would make the walk longer still. A fetch that does not overrun costs
nothing more: the ``SET LOCAL`` goes in the same query string
(``DatabaseWrapper.statement_settings``). Counts and other fetches without a limit read every
match either way and are not guarded.
"""

import logging
from collections.abc import Callable
from contextlib import nullcontext
from typing import TypeVar

from django.db import OperationalError, transaction
from django.db.models import QuerySet
from psycopg import errors

logger = logging.getLogger(__name__)

# At about a microsecond per row filtered, 25 ms is a walk past some 25,000 rows that did not
# fill a page (matches rarer than 1 in 1,000), and a few percent of the walk's worst.
DEFAULT_TIMEOUT_MS = 25

# The first run is one backend's: a misjudged walk takes one core for its timeout, not one per
# parallel worker (a page has no use for them).
FIRST_RUN = {"max_parallel_workers_per_gather": "0"}
# The second run reads the table only through bitmaps of its indexes (the trigram index).
NOT_THE_WALK = {"enable_indexscan": "off", "enable_indexonlyscan": "off", "enable_seqscan": "off"}

Q = TypeVar("Q", bound=QuerySet)


def guard_plan(queryset: Q, *, timeout_ms: int = DEFAULT_TIMEOUT_MS) -> Q:
    """The same queryset, whose limited fetches are cut at ``timeout_ms`` and run again with
    the indexes alone (see the module's docstring)."""
    queryset = queryset.all()
    queryset.query.plan_guard_ms = timeout_ms
    return queryset


def guarded_timeout_ms(query) -> int | None:
    """The guard's timeout for a query that has one and a limit; None for any other."""
    if query.high_mark is None:
        return None
    return getattr(query, "plan_guard_ms", None)


def execute_guarded(compiler, timeout_ms: int, execute: Callable[[], object]) -> object:
    connection = compiler.connection
    # Inside a transaction a cancelled statement aborts it: the attempt gets a savepoint.
    attempt = transaction.atomic(using=compiler.using) if connection.in_atomic_block else nullcontext()
    try:
        with attempt, connection.statement_settings(statement_timeout=f"{timeout_ms}ms", **FIRST_RUN):
            return execute()
    except OperationalError as exc:
        if not isinstance(exc.__cause__, errors.QueryCanceled):
            raise
    logger.warning(
        "A read of %s overran its plan's %d ms; run again through the indexes",
        compiler.query.model._meta.label if compiler.query.model else "a query",
        timeout_ms,
    )
    with connection.statement_settings(**NOT_THE_WALK):
        return execute()
