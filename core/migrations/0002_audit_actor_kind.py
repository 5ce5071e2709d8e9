from django.db import migrations, models
from django.db.models import F


def entries_with_an_email_were_operators(apps, schema_editor):
    # Before actor kinds, only operators were recorded with an e-mail; the rest was the system.
    AuditEntry = apps.get_model("core", "AuditEntry")
    AuditEntry.objects.exclude(actor_email="").update(actor_kind="user", actor_label=F("actor_email"))


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="auditentry",
            name="actor_kind",
            field=models.CharField(
                choices=[
                    ("user", "operator"),
                    ("token", "API token"),
                    ("customer", "customer"),
                    ("system", "system"),
                ],
                default="system",
                max_length=10,
            ),
        ),
        migrations.AddField(
            model_name="auditentry",
            name="actor_label",
            field=models.CharField(blank=True, max_length=200),
        ),
        migrations.RunPython(entries_with_an_email_were_operators, migrations.RunPython.noop),
    ]
