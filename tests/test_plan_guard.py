"""Guarded reads (core/postgresql/plans.py): a limited fetch that overruns its timeout runs again
through the indexes; one that does not costs no round trip more; neither leaves a setting
behind, in autocommit or inside a transaction."""

import contextlib
import logging

import pytest
from django.db import connection, connections, transaction
from django.db.models.expressions import RawSQL

from accounts.models import Customer, Organization
from accounts.selectors import customers_matching
from core.postgresql.base import DatabaseWrapper
from core.postgresql.plans import DEFAULT_TIMEOUT_MS, guard_plan
from core.postgresql.trace import sent_queries

pytestmark = pytest.mark.django_db(transaction=True)

WHERE = {"autocommit": contextlib.nullcontext, "in a transaction": transaction.atomic}
SETTINGS = ("statement_timeout", "enable_indexscan", "enable_seqscan", "max_parallel_workers_per_gather")


def _setting(name: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting(%s)", [name])
        return cursor.fetchone()[0]


def _seen(queryset, *, sleep: float = 0.0):
    """Each row with the settings its statement ran under (and a sleep, to overrun)."""
    return queryset.annotate(
        slept=RawSQL("(SELECT 1 FROM pg_sleep(%s))", [sleep]),
        timeout=RawSQL("current_setting('statement_timeout')", []),
        indexscan=RawSQL("current_setting('enable_indexscan')", []),
        seqscan=RawSQL("current_setting('enable_seqscan')", []),
        parallel=RawSQL("current_setting('max_parallel_workers_per_gather')", []),
    )


@pytest.mark.parametrize("where", WHERE)
def test_a_read_that_overruns_runs_again_through_the_indexes(org, where, caplog):
    guarded = guard_plan(Organization.objects.filter(pk=org.pk), timeout_ms=10)
    before = {name: _setting(name) for name in SETTINGS}

    with WHERE[where](), caplog.at_level(logging.WARNING, logger="core.postgresql.plans"):
        rows = list(_seen(guarded, sleep=0.05)[:1])
        # The same connection, still usable, with nothing left set (in a transaction too).
        after = {name: _setting(name) for name in SETTINGS}
        assert Organization.objects.filter(pk=org.pk).exists()

    assert [row.pk for row in rows] == [org.pk]
    assert (rows[0].timeout, rows[0].indexscan, rows[0].seqscan) == ("0", "off", "off")
    assert "overran its plan's 10 ms" in caplog.text
    assert after == before


@pytest.mark.parametrize("where", WHERE)
def test_a_read_in_time_sends_its_timeout_in_the_same_query_string(org, where):
    with WHERE[where](), sent_queries() as sent:
        rows = list(_seen(guard_plan(Organization.objects.all()))[:5])
        timeout_after = _setting("statement_timeout")

    assert [row.pk for row in rows] == [org.pk]
    assert (rows[0].timeout, rows[0].indexscan, rows[0].parallel) == (f"{DEFAULT_TIMEOUT_MS}ms", "on", "0")
    assert timeout_after == "0"
    reads = [q for q in sent if "accounts_organization" in q]
    assert len(reads) == 1 and f"SET LOCAL statement_timeout = '{DEFAULT_TIMEOUT_MS}ms'; " in reads[0]
    if where == "in a transaction":  # set back with the statement after it
        assert any(q.startswith("SET LOCAL statement_timeout TO DEFAULT") for q in sent), sent


def test_counts_and_unlimited_fetches_are_not_guarded(org):
    guarded = guard_plan(Organization.objects.all())

    with sent_queries() as sent:
        assert guarded.count() == 1
        assert len(list(guarded.all())) == 1
        assert guarded.all().exists()  # LIMIT 1: guarded

    assert len(sent) == 3
    assert ["SET LOCAL" in q for q in sent] == [False, False, True], sent


def test_a_block_that_runs_no_statement_sends_nothing(org):
    with sent_queries() as sent, connection.statement_settings(statement_timeout="5ms"):
        pass
    assert sent == [] and connection.connection.deferred == []
    assert _setting("statement_timeout") == "0"

    with pytest.raises(ValueError, match="setting"), connection.statement_settings(**{"x; DROP": "1"}):
        pass


def test_a_customer_search_is_a_guarded_read(org):
    Customer.objects.create(organization=org, email="ada@example.com", name="Ada Lovelace")

    with sent_queries() as sent:
        found = list(customers_matching(Customer.objects.filter(organization=org), "lovelace")[:21])

    assert [c.name for c in found] == ["Ada Lovelace"]
    assert len(sent) == 1 and sent[0].startswith("SET LOCAL statement_timeout"), sent


def test_with_server_side_binding_the_settings_are_set_and_reset_around_the_block():
    settings = {**connections["default"].settings_dict, "OPTIONS": {"server_side_binding": True}}
    other = DatabaseWrapper(settings)  # a second connection; "default" for the type lookups
    try:
        with (
            other.statement_settings(statement_timeout="5ms", enable_seqscan="off"),
            other.cursor() as cursor,
        ):
            cursor.execute("SELECT current_setting('statement_timeout'), current_setting('enable_seqscan')")
            assert cursor.fetchone() == ("5ms", "off")
        with other.cursor() as cursor:
            cursor.execute("SELECT current_setting('statement_timeout'), current_setting('enable_seqscan')")
            assert cursor.fetchone() == ("0", "on")
    finally:
        other.close()
