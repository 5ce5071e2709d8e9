from django.core.management.base import BaseCommand

from core.schedule_install import schedules_install


class Command(BaseCommand):
    help = "Make django-celery-beat's periodic tasks match core.schedules (idempotent)."

    def handle(self, *args, **options):
        result = schedules_install()
        self.stdout.write(
            f"schedules: {result.created} created, {result.updated} updated, "
            f"{result.unchanged} unchanged, {result.removed} removed"
        )
