"""The customer trigram indexes without a pending list (see ``Customer.Meta.indexes``).

``ALTER INDEX ... SET (fastupdate = off)`` instead of dropping and rebuilding them (minutes at
a million customers); the entries already pending are merged into the index here."""

import django.contrib.postgres.indexes
import django.db.models.functions.text
from django.db import migrations

INDEXES = {
    "customer_email_trgm_idx": "email",
    "customer_name_trgm_idx": "name",
    "customer_external_trgm_idx": "external_id",
}


def _index(name: str, column: str, fastupdate: bool | None):
    return django.contrib.postgres.indexes.GinIndex(
        django.contrib.postgres.indexes.OpClass(django.db.models.functions.text.Upper(column), name="gin_trgm_ops"),
        name=name,
        **({} if fastupdate is None else {"fastupdate": fastupdate}),
    )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0005_customer_search_indexes"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    sql=[
                        f"ALTER INDEX {name} SET (fastupdate = off); SELECT gin_clean_pending_list('{name}')"
                        for name in INDEXES
                    ],
                    reverse_sql=[f"ALTER INDEX {name} RESET (fastupdate)" for name in INDEXES],
                )
            ],
            state_operations=[
                operation
                for name, column in INDEXES.items()
                for operation in (
                    migrations.RemoveIndex(model_name="customer", name=name),
                    migrations.AddIndex(model_name="customer", index=_index(name, column, False)),
                )
            ],
        )
    ]
