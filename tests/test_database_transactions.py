"""Transactions begin with their first statement (core/postgresql/base.py): one round trip
fewer per transaction, and every statement of an atomic block still inside it: plain
statements, COPY, named cursors, savepoints, failures."""

import contextlib
import uuid

import pytest
from django.db import DataError, IntegrityError, ProgrammingError, connection, transaction
from django.db.transaction import TransactionManagementError
from psycopg import pq

from accounts.models import Organization
from core.bulk import copy_insert
from core.postgresql.trace import sent_queries

pytestmark = pytest.mark.django_db(transaction=True)


def _unsaved(slug: str) -> Organization:
    return Organization(name=slug, slug=slug, invoice_prefix=uuid.uuid4().hex[:12].upper())


def _organization(slug: str) -> Organization:
    organization = _unsaved(slug)
    organization.save()
    return organization


def _status() -> pq.TransactionStatus:
    return connection.connection.info.transaction_status


def _committed_slugs() -> set[str]:
    """Called outside any block: what was committed."""
    assert not connection.in_atomic_block
    with connection.cursor() as cursor:
        cursor.execute("SELECT slug FROM accounts_organization")
        return {row[0] for row in cursor.fetchall()}


def test_a_transaction_sends_its_begin_with_its_first_statement():
    with sent_queries() as sent, transaction.atomic():
        first = _organization("first")
        assert _status() == pq.TransactionStatus.INTRANS
        assert Organization.objects.get(pk=first.pk).slug == "first"  # the INSERT's RETURNING was read
    assert len(sent) == 3, sent
    assert sent[0].startswith("BEGIN; INSERT INTO")
    assert sent[1].startswith("SELECT") and sent[2] == "COMMIT"
    assert _status() == pq.TransactionStatus.IDLE
    assert "first" in _committed_slugs()


def test_an_empty_transaction_sends_nothing_and_autocommit_statements_no_begin():
    with sent_queries() as sent:
        with transaction.atomic():
            pass
        _organization("alone")
    assert len(sent) == 1 and sent[0].startswith("INSERT INTO"), sent
    assert _status() == pq.TransactionStatus.IDLE


def test_a_failure_rolls_the_whole_block_back_and_the_connection_goes_on():
    _organization("taken")
    with pytest.raises(IntegrityError), transaction.atomic():
        _organization("kept-out")
        _organization("taken")
    assert _status() == pq.TransactionStatus.IDLE
    assert _committed_slugs() == {"taken"}
    with transaction.atomic():  # a failing first statement, then a fresh transaction
        with pytest.raises(IntegrityError), transaction.atomic():
            _organization("taken")
        _organization("after")
    assert _committed_slugs() == {"taken", "after"}


def test_a_failing_first_statement_leaves_no_transaction_open():
    with pytest.raises(IntegrityError), transaction.atomic():
        Organization.objects.create(name="x", slug=None, invoice_prefix="NULLSLUG")
    assert _status() == pq.TransactionStatus.IDLE
    _organization("fine")
    assert _committed_slugs() == {"fine"}


def test_savepoints_roll_back_their_part_only():
    with transaction.atomic():
        _organization("outer")
        with contextlib.suppress(RuntimeError), transaction.atomic():
            _organization("inner")
            raise RuntimeError
    assert _committed_slugs() == {"outer"}


def test_copy_inside_a_transaction_is_part_of_it():
    organization = _organization("copy-holder")
    with contextlib.suppress(RuntimeError), transaction.atomic():
        with sent_queries() as sent:
            copy_insert([_unsaved("copied")])
        raise RuntimeError  # the COPY must go with the rollback
    assert sent[0].startswith("BEGIN") and sent[1].startswith("COPY"), sent
    assert _committed_slugs() == {organization.slug}


def test_a_named_cursor_reads_inside_the_transaction():
    with transaction.atomic():
        _organization("unseen-outside")
        with sent_queries() as sent:
            slugs = [o.slug for o in Organization.objects.order_by("slug").iterator(chunk_size=10)]
        assert slugs == ["unseen-outside"]
        assert not any("WITH HOLD" in query for query in sent), sent  # not holdable inside a transaction
    with sent_queries() as sent:
        assert [o.slug for o in Organization.objects.iterator(chunk_size=10)] == ["unseen-outside"]
    assert any("WITH HOLD" in query for query in sent), sent  # outside one it must be


def test_a_savepoint_travels_with_the_next_statement_and_its_release_too():
    with sent_queries() as sent, transaction.atomic():
        _organization("outer")
        with transaction.atomic():
            _organization("inner")
        assert Organization.objects.count() == 2
    assert len(sent) == 4, sent
    assert sent[0].startswith("BEGIN; INSERT")
    assert sent[1].startswith("SAVEPOINT ") and "; INSERT INTO" in sent[1]
    assert sent[2].startswith("RELEASE SAVEPOINT ") and "; SELECT COUNT" in sent[2]
    assert sent[3] == "COMMIT"
    assert _committed_slugs() == {"outer", "inner"}


def test_a_savepoint_that_saw_no_statement_is_never_sent():
    with sent_queries() as sent, transaction.atomic():
        _organization("outer")
        with transaction.atomic(), transaction.atomic():
            pass
        with contextlib.suppress(RuntimeError), transaction.atomic():
            raise RuntimeError  # rolled back before any statement: nothing to undo
        _organization("after")
    assert not any("SAVEPOINT" in query for query in sent), sent
    assert len(sent) == 3, sent  # BEGIN; INSERT, INSERT, COMMIT
    assert _committed_slugs() == {"outer", "after"}


def test_a_value_that_cannot_be_sent_leaves_the_savepoint_waiting():
    with transaction.atomic():
        _organization("kept")
        with pytest.raises(DataError), transaction.atomic():
            _organization("nul\x00byte")  # refused by psycopg before anything is sent
        assert _status() == pq.TransactionStatus.INTRANS
        _organization("also-kept")
    assert _committed_slugs() == {"kept", "also-kept"}


def test_a_statement_that_does_not_parse_with_a_waiting_savepoint_dooms_the_block():
    # The one difference from Django's eager savepoints (core/postgresql/base.py).
    with pytest.raises(TransactionManagementError), transaction.atomic():
        _organization("lost")
        with pytest.raises(ProgrammingError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELEC 1")
        _organization("refused")
    assert _status() == pq.TransactionStatus.IDLE
    assert _committed_slugs() == set()


def test_a_failure_after_released_savepoints_rolls_back_to_the_right_one():
    with transaction.atomic():
        _organization("first")
        with transaction.atomic():
            _organization("second")
        with pytest.raises(IntegrityError), transaction.atomic():
            with transaction.atomic():
                _organization("third")  # inside the failing block: undone with it
            _organization("first")
        _organization("fourth")
    assert _committed_slugs() == {"first", "second", "fourth"}
