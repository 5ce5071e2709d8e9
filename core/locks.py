"""Row locks, taken one way everywhere.

A lock takes only the rows it means: ``FOR NO KEY UPDATE OF <table>`` (``of=("self",)``),
never the rows a ``select_related`` joins, and never the key-share lock that a foreign key
check needs, so inserting an order or a payment that points at a locked customer does not
wait for it. Every operation takes its rows in one fixed order, so no two operations can
each hold what the other waits for:

    1. subscriptions, checkouts  (the aggregates an operation starts from)
    2. orders
    3. refunds, disputes
    4. customers                 (wallets: every reader and writer of a wallet holds it)
    5. payments
    6. invoice counters          (one row per organization, held until commit: take it last)
    7. ledger running balances   (locked by the entry trigger, in account id order)

Rows of one kind are locked in primary key order. The helpers of each aggregate
(``billing/subscriptions/locks.py``, ``billing/orders/locks.py``, ``accounts/locks.py``,
...) build on the two functions here; a path that needs rows of several kinds calls them
in the order above. What still collides (a deadlock the database breaks, a serialization
failure) is retried by ``core.retry``.
"""

from collections.abc import Iterable

from django.db import models, transaction


def _locking(queryset: models.QuerySet, **options) -> models.QuerySet:
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("a row lock lasts until commit: take it inside a transaction")
    # Locked without its joins: PostgreSQL re-checks a row that changed while it waited
    # against the joined rows it read before waiting, so a join on a column that changed
    # (a subscription's new price) would make the locked row vanish from the result.
    return queryset.select_related(None).select_for_update(of=("self",), no_key=True, **options)


def _queryset(queryset) -> models.QuerySet:
    return queryset._default_manager.all() if isinstance(queryset, type) else queryset


def _joins(queryset: models.QuerySet) -> bool:
    return bool(queryset.query.select_related)


def lock_one(queryset: models.QuerySet | type[models.Model], pk, **options) -> models.Model | None:
    """Lock the row ``pk`` of ``queryset`` (a model or a queryset, e.g. with
    ``select_related``: the joined rows are read once the row is held, not locked). None
    when it does not exist (or does not match the queryset's filters)."""
    queryset = _queryset(queryset)
    row = _locking(queryset, **options).filter(pk=pk).first()
    if row is None or not _joins(queryset):
        return row
    return queryset.filter(pk=pk).first()


def lock_many(queryset: models.QuerySet | type[models.Model], pks: Iterable, **options) -> list:
    """Lock these rows in primary key order (``skip_locked=True`` leaves out rows another
    transaction holds). Returns the rows that exist, in that order."""
    queryset = _queryset(queryset)
    pks = sorted(set(pks), key=str)
    if not pks:
        return []
    rows = list(_locking(queryset, **options).filter(pk__in=pks).order_by("pk"))
    if not rows or not _joins(queryset):
        return rows
    return list(queryset.filter(pk__in=[row.pk for row in rows]).order_by("pk"))


def lock_first(queryset: models.QuerySet, **options) -> models.Model | None:
    """Lock the first row of ``queryset`` (looked up by another unique key than the pk)."""
    row = _locking(queryset, **options).first()
    if row is None or not _joins(queryset):
        return row
    return queryset.filter(pk=row.pk).first()


def lock_all(queryset: models.QuerySet, **options) -> list:
    """Lock every row of ``queryset``, in its order (order it by the key that fixes the lock
    order, e.g. the organization for per-organization rows)."""
    return list(_locking(queryset, **options))
