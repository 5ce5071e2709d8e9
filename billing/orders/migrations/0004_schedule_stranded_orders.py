"""Orders written before every owed order carried its first attempt: those left pending with
nothing scheduled (a renewal whose collection message was lost) get their first attempt due
at once, so the collection sweep charges them. Orders whose dunning ran out keep waiting."""

from django.db import migrations

SCHEDULE_STRANDED = """
UPDATE orders_order SET next_payment_attempt_at = created_at
WHERE status = 'pending' AND due > 0
  AND next_payment_attempt_at IS NULL AND dunning_deadline IS NULL
"""


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0003_payment_hold"),
    ]

    operations = [migrations.RunSQL(SCHEDULE_STRANDED, reverse_sql=migrations.RunSQL.noop)]
