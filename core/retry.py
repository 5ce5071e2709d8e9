"""Retrying a whole transaction that lost a race in the database.

PostgreSQL breaks a deadlock by failing one of the transactions (SQLSTATE 40P01) and
refuses some concurrent updates under stricter isolation (40001). Neither is the
caller's fault and both succeed when the transaction runs again from the start. So a
service that owns a transaction is wrapped in ``retry_on_conflict``: it runs again a
bounded number of times with a short jittered backoff, and if it still loses, raises
``ConcurrentUpdate`` (a ``Conflict``: 409 ``concurrent_update`` in the API, a form error
in the backoffice, a retried task in Celery), never a 500.

A retry is only possible at the outermost transaction: inside an enclosing ``atomic``
block the failed transaction is already lost, and re-running the inner part inside a
savepoint cannot undo it. So inside a transaction the wrapper lets the error through for
the outermost wrapped caller to retry.
"""

import functools
import logging
import random
import time

from django.db import DatabaseError, transaction

from core.errors import Conflict

logger = logging.getLogger("recur.retry")

# deadlock_detected, serialization_failure
TRANSIENT_SQLSTATES = frozenset({"40P01", "40001"})
ATTEMPTS = 5
BASE_DELAY = 0.02  # seconds; doubled per attempt, with full jitter


class ConcurrentUpdate(Conflict):
    """The change kept colliding with concurrent changes of the same rows."""

    def __init__(self, detail: str = "The object was being changed concurrently; try again.", **kwargs):
        kwargs.setdefault("code", "concurrent_update")
        super().__init__(detail, **kwargs)


def sqlstate_of(exc: BaseException) -> str | None:
    """The SQLSTATE of a database error (Django wraps psycopg's error as the cause)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        state = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
        if state:
            return state
        exc = exc.__cause__ or exc.__context__
    return None


def is_transient(exc: BaseException) -> bool:
    """A deadlock or serialization failure (or what this module raises after retrying one):
    running the transaction again would succeed."""
    if isinstance(exc, ConcurrentUpdate):
        return True
    return isinstance(exc, DatabaseError) and sqlstate_of(exc) in TRANSIENT_SQLSTATES


def backoff(attempt: int, base: float = BASE_DELAY) -> float:
    return random.uniform(0, base * 2 ** (attempt - 1))


def retry_on_conflict(func=None, *, attempts: int = ATTEMPTS):
    """Run ``func`` (which opens its own transaction) again when the database aborts it with
    a deadlock or a serialization failure; after ``attempts`` tries raise ``ConcurrentUpdate``.
    ``func`` must do nothing outside the database before it can fail (side effects after
    commit), which services do anyway."""

    def decorate(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            if transaction.get_connection().in_atomic_block:
                return func(*args, **kwargs)  # the outermost transaction's owner retries
            for attempt in range(1, attempts + 1):
                try:
                    return func(*args, **kwargs)
                except DatabaseError as exc:
                    if not is_transient(exc):
                        raise
                    if attempt == attempts:
                        logger.warning("%s lost to concurrent updates %d times", func.__qualname__, attempts)
                        raise ConcurrentUpdate() from exc
                    logger.info(
                        "%s: %s; retrying (%d/%d)", func.__qualname__, sqlstate_of(exc), attempt, attempts
                    )
                    time.sleep(backoff(attempt))
            raise AssertionError("unreachable")

        wrapper.retries_on_conflict = True
        return wrapper

    return decorate(func) if func is not None else decorate
