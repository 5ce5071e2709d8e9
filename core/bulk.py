"""Fast bulk inserts with PostgreSQL COPY, for batch jobs writing thousands of rows."""

import enum
import json
from collections.abc import Callable, Sequence

from django.db import connection, connections, models

# Fields whose Python value psycopg writes as it is (COPY adapts ints, strings, booleans,
# UUIDs, aware datetimes and decimals itself); others go through Django's preparation.
PLAIN_FIELDS = (
    models.IntegerField,  # the big, small and positive ones too
    models.CharField,
    models.TextField,
    models.BooleanField,
    models.UUIDField,
    models.DateTimeField,
    models.DecimalField,
    models.ForeignKey,
)


def copy_insert(objs: Sequence[models.Model]) -> None:
    """Insert unsaved model instances with COPY (no RETURNING: primary keys must be set already,
    as UUID defaults are). Values are what ``bulk_create`` would send."""
    if not objs:
        return
    model = type(objs[0])
    fields = [f for f in model._meta.concrete_fields if not isinstance(f, models.AutoField)]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    table = connection.ops.quote_name(model._meta.db_table)
    for obj in objs:
        for field in fields:
            if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
                field.pre_save(obj, add=True)
    real = connections[connection.alias]  # not the thread-local proxy: this loop is hot
    readers = [_reader(field, real) for field in fields]
    with (
        connection.cursor() as cursor,
        cursor.connection.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
    ):
        for obj in objs:
            copy.write_row([read(obj) for read in readers])
    for obj in objs:
        obj._state.adding = False
        obj._state.db = connection.alias


def _reader(field: models.Field, real_connection) -> Callable[[models.Model], object]:
    attname = field.attname
    if isinstance(field, PLAIN_FIELDS):

        def plain(obj):
            value = getattr(obj, attname)
            # Choices are str/int enums: psycopg would write an Enum's name, Django its value.
            return value.value if isinstance(value, enum.Enum) else value

        return plain

    def prepared(obj):
        value = field.get_db_prep_save(getattr(obj, attname), real_connection)
        if hasattr(value, "dumps") and hasattr(value, "obj"):  # psycopg Jsonb wrapper
            return json.dumps(value.obj)
        return value

    return prepared
