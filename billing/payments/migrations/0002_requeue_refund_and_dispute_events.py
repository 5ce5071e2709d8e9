"""Events stored as ``deferred`` before refunds and disputes were handled go back to
``pending``: the events sweeper re-enqueues them and their receivers now process them."""

from django.db import migrations

TYPES = [
    "refund.created",
    "refund.updated",
    "refund.failed",
    "charge.dispute.created",
    "charge.dispute.updated",
    "charge.dispute.closed",
    "charge.dispute.funds_withdrawn",
    "charge.dispute.funds_reinstated",
]


def requeue(apps, schema_editor):
    ExternalEvent = apps.get_model("payments", "ExternalEvent")
    ExternalEvent.objects.filter(status="deferred", type__in=TYPES).update(
        status="pending", note="re-queued: refunds and disputes are handled now"
    )


class Migration(migrations.Migration):
    dependencies = [("payments", "0001_initial")]

    operations = [migrations.RunPython(requeue, migrations.RunPython.noop)]
