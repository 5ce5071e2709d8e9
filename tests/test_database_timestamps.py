"""Timestamps are read by psycopg's own loader, with the values and time zone Django's loader
gave, on every kind of cursor Django makes (core/postgresql/base.py)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, connections, transaction
from django.db.backends.postgresql.psycopg_any import register_tzloader
from psycopg import pq

from accounts.models import Customer
from core.postgresql.base import PSYCOPG_TZ_LOADER, TIMESTAMPTZ

pytestmark = pytest.mark.django_db

# A leap day, a microsecond, a date before the epoch, and one far ahead.
MOMENTS = [
    datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(1969, 7, 20, 20, 17, 40, tzinfo=UTC),
    datetime(2999, 12, 31, 0, 0, 0, 1, tzinfo=UTC),
]


def _customers(org) -> list[Customer]:
    customers = []
    for i, moment in enumerate(MOMENTS):
        customer = Customer.objects.create(organization=org, email=f"t{i}@example.com")
        Customer.objects.filter(pk=customer.pk).update(created_at=moment)
        customers.append(customer)
    return customers


def _django_loaded(sql: str, params) -> list:
    """What Django's own loader reads for the same query."""
    with connection.cursor() as cursor:
        register_tzloader(UTC, cursor.cursor)
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]


def test_timestamps_read_as_django_reads_them(org):
    customers = _customers(org)
    ids = [c.pk for c in customers]
    connection.ensure_connection()
    assert connection.connection.adapters.get_loader(TIMESTAMPTZ, pq.Format.TEXT) is PSYCOPG_TZ_LOADER

    by_model = [c.created_at for c in Customer.objects.filter(pk__in=ids).order_by("email")]
    by_values = list(
        Customer.objects.filter(pk__in=ids).order_by("email").values_list("created_at", flat=True)
    )
    with transaction.atomic():  # a named (server-side) cursor
        by_iterator = [
            c.created_at for c in Customer.objects.filter(pk__in=ids).order_by("email").iterator(chunk_size=2)
        ]
    django = _django_loaded(
        "SELECT created_at FROM accounts_customer WHERE id = ANY(%s) ORDER BY email", [ids]
    )

    assert by_model == by_values == by_iterator == django == MOMENTS
    assert all(moment.tzinfo is UTC for moment in by_model + by_values + by_iterator)


def test_a_time_zone_changed_after_connecting_is_still_honoured(org, settings):
    customer, *_ = _customers(org)
    connection.ensure_connection()
    # A database TIME_ZONE set later (as a test's settings override does): Django's loader
    # is registered on each cursor again, with that zone.
    tokyo = "Asia/Tokyo"
    connection.settings_dict["TIME_ZONE"] = tokyo
    connections["default"].__dict__.pop("timezone", None)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SET TIME ZONE %s", [tokyo])
            loader = cursor.cursor.adapters.get_loader(TIMESTAMPTZ, pq.Format.TEXT)
            read = Customer.objects.get(pk=customer.pk).created_at
    finally:
        connection.settings_dict["TIME_ZONE"] = None
        connections["default"].__dict__.pop("timezone", None)
        with connection.cursor() as cursor:
            cursor.execute("SET TIME ZONE 'UTC'")
    assert loader is not PSYCOPG_TZ_LOADER and str(loader.timezone) == tokyo
    assert read == MOMENTS[0]
    assert read.utcoffset() == timedelta(hours=9)
