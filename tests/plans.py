"""Query plans for tests: which indexes PostgreSQL uses for a queryset.

The tables are given a crowd of customers (``crowd``) and fresh statistics, so the planner
prefers an index that serves the query's form, as it would in production; sequential scans
are also turned off (``enable_seqscan = off`` makes them cost prohibitively, not impossible),
so a plan that still reads a table whole has no index to use."""

import pytest
from django.db import connection, transaction
from django.db.models import QuerySet

from accounts.bench_population import customers_seed
from core import clock

CROWD = 20_000


@pytest.fixture
def crowd(org):
    """``CROWD`` customers of ``org`` (see ``accounts.bench_population``), analyzed."""
    customers_seed(organization=org, n=CROWD, now=clock.now())
    with connection.cursor() as cursor:
        # Rows inserted in one go wait in the GIN indexes' pending lists, which the planner
        # prices high; autovacuum would merge them, as this does.
        cursor.execute(
            "SELECT gin_clean_pending_list(indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_am am ON am.oid = c.relam WHERE i.indrelid = 'accounts_customer'::regclass AND am.amname = 'gin'"
        )
        cursor.execute("ANALYZE accounts_customer")
    return org


def plan_without_seqscan(queryset: QuerySet) -> str:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        return queryset.explain()


def seq_scanned(plan: str) -> set[str]:
    """The tables the plan still reads whole."""
    return {line.split(" on ")[1].split()[0] for line in plan.splitlines() if "Seq Scan on" in line}
