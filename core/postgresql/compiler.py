"""Django's PostgreSQL compilers, with the SELECT and ORDER BY clauses of plain queries compiled
once per shape.

Django compiles every query from scratch: for ``Customer.objects.filter(...)[:21]`` about
0.4 ms, two thirds of it the select list (every column, each compiled and quoted) and the
ordering (each name resolved to its column), though for a model's own columns in its own
order neither depends on anything but the model, the table's alias and the ordering's names.
Those two results are kept per process for queries where that holds: the model's own
columns, all of them or those ``only()`` or ``defer()`` leave (no ``values()``,
``select_related()``, ``extra()`` or selected annotations), no multi-table inheritance, and
an ordering by names of the model's own non-relation fields. Any other query compiles as
Django compiles it. The WHERE clause, which holds the values, is always compiled afresh.

The same compiler runs the fetches of querysets marked by ``plans.guard_plan`` under its
timeout (``core/postgresql/plans.py``).
"""

from functools import partial

from django.core.exceptions import FieldDoesNotExist
from django.db.backends.postgresql.compiler import (
    SQLAggregateCompiler,
    SQLDeleteCompiler,
    SQLInsertCompiler,
    SQLUpdateCompiler,
)
from django.db.backends.postgresql.compiler import SQLCompiler as PostgresSQLCompiler
from django.db.models.constants import LOOKUP_SEP
from django.db.models.sql.constants import GET_ITERATOR_CHUNK_SIZE, MULTI

from core.postgresql import plans

__all__ = [
    "SQLAggregateCompiler",
    "SQLCompiler",
    "SQLDeleteCompiler",
    "SQLInsertCompiler",
    "SQLUpdateCompiler",
]

# Keys are shapes written in code (a model, an alias, an ordering), so a process makes a few
# hundred at most; the bound only keeps an unforeseen source of shapes from growing them.
MAX_SHAPES = 2048
_selects: dict[tuple, tuple] = {}
_orderings: dict[tuple, tuple | None] = {}  # None: that ordering is not one kept


def _plain_select(query) -> bool:
    model = query.model
    return (
        model is not None
        and query.default_cols
        and query.selected is None
        and not query.select_related
        and not query.extra_select
        and not query.annotation_select
        and not query.combinator
        and not model._meta.parents
    )


def _ordering_names(query) -> tuple[str, ...] | None:
    """The names the query orders by, if each is one of the model's own non-relation fields."""
    explicit = query.order_by or not query.default_ordering
    names = query.order_by if explicit else query.get_meta().ordering
    for name in names:
        if not isinstance(name, str):
            return None
        bare = name.removeprefix("-")
        if bare == "pk":
            continue
        if LOOKUP_SEP in bare or bare in ("?", "") or bare.startswith("-"):
            return None
        try:
            field = query.model._meta.get_field(bare)
        except FieldDoesNotExist:
            return None
        if field.is_relation or not field.concrete:
            return None
    return tuple(names)


def _base_alias(query) -> str | None:
    # Not ``query.base_table``: a cached property that relabelling (subqueries) leaves stale.
    alias = next(iter(query.alias_map), None)
    if alias is None or query.alias_map[alias].table_name != query.model._meta.db_table:
        return None
    return alias


class SQLCompiler(PostgresSQLCompiler):
    # The table alias of a select list that is the model's columns, unaliased; else None.
    _plain_alias: str | None = None

    def execute_sql(self, result_type=MULTI, chunked_fetch=False, chunk_size=GET_ITERATOR_CHUNK_SIZE):
        timeout_ms = plans.guarded_timeout_ms(self.query)
        if timeout_ms is None or chunked_fetch:  # a server-side cursor: not one statement
            return super().execute_sql(result_type, chunked_fetch, chunk_size)
        execute = partial(super().execute_sql, result_type, chunked_fetch, chunk_size)
        return plans.execute_guarded(self, timeout_ms, execute)

    def setup_query(self, with_col_aliases=False):
        query = self.query
        self._plain_alias = None
        if with_col_aliases or not _plain_select(query):
            return super().setup_query(with_col_aliases=with_col_aliases)
        if all(query.alias_refcount[a] == 0 for a in query.alias_map):
            query.get_initial_alias()
        alias = _base_alias(query)
        if alias is None:
            return super().setup_query()
        self._plain_alias = alias
        names, defer = query.deferred_loading  # the names are a set or a frozenset
        key = (query.model, alias, (frozenset(names), defer), self.connection.alias)
        kept = _selects.get(key)
        if kept is None:
            super().setup_query()
            if len(_selects) < MAX_SHAPES:
                _selects[key] = (tuple(self.select), self.klass_info)
            return
        select, klass_info = kept
        self.select = list(select)
        self.klass_info = dict(klass_info)
        self.annotation_col_map = {}
        self.col_count = len(self.select)

    def get_order_by(self):
        # The ordering is resolved against the select list (a name may be a selected alias),
        # so it is kept only beside a plain one.
        query = self.query
        if (
            self._plain_alias is None
            or query.extra_order_by
            or query.annotations
            or query.extra
            or not all(isinstance(name, str) for name in query.order_by)
        ):
            return super().get_order_by()
        key = (
            query.model,
            self._plain_alias,
            tuple(query.order_by),
            query.default_ordering,
            query.standard_ordering,
            self.connection.alias,
        )
        if key not in _orderings:
            if _ordering_names(query) is None:
                if len(_orderings) < MAX_SHAPES:
                    _orderings[key] = None
                return super().get_order_by()
            result = super().get_order_by()
            if len(_orderings) < MAX_SHAPES:
                _orderings[key] = (tuple(result), self._meta_ordering)
            return result
        kept = _orderings[key]
        if kept is None:
            return super().get_order_by()
        result, self._meta_ordering = kept
        return list(result)
