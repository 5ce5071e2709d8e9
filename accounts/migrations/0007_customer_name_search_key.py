"""The name's trigram index on its search key (``accounts.models.NameSearchKey``) instead of the
plain name: a full name is served by the trigrams that cross its space. Built and dropped
concurrently, so a large customers table takes writes meanwhile."""

import django.contrib.postgres.indexes
import django.db.models.functions.text
from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations

import accounts.models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("accounts", "0006_trigram_fastupdate_off"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="customer",
            index=django.contrib.postgres.indexes.GinIndex(
                django.contrib.postgres.indexes.OpClass(
                    django.db.models.functions.text.Upper(accounts.models.NameSearchKey("name")), name="gin_trgm_ops"
                ),
                fastupdate=False,
                name="customer_name_key_trgm_idx",
            ),
        ),
        RemoveIndexConcurrently(model_name="customer", name="customer_name_trgm_idx"),
    ]
