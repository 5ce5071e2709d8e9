from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Idempotent platform setup after migrate: periodic schedules and backoffice roles."

    def handle(self, *args, **options):
        call_command("install_schedules", stdout=self.stdout)
        call_command("setup_roles", stdout=self.stdout)
