"""Print the event catalogue, or write it into docs/webhooks.md (``--write``), or fail when
the file is out of date (``--check``, for CI)."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from core.events.catalogue import catalogue_markdown, catalogue_splice, catalogue_write


class Command(BaseCommand):
    help = "The event catalogue (types and example payloads) from the registry and the OpenAPI document."

    def add_arguments(self, parser):
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--write", metavar="PATH", help="Rewrite the generated part of this file.")
        group.add_argument("--check", metavar="PATH", help="Exit 1 when this file is out of date.")

    def handle(self, *args, write=None, check=None, **options):
        if write:
            changed = catalogue_write(Path(write))
            self.stdout.write(f"{write}: {'updated' if changed else 'up to date'}")
        elif check:
            path = Path(check)
            text = path.read_text() if path.exists() else ""
            if catalogue_splice(text, catalogue_markdown()) != text:
                raise CommandError(
                    f"{check} is out of date: run `manage.py events_catalogue --write {check}`"
                )
            self.stdout.write(f"{check}: up to date")
        else:
            self.stdout.write(catalogue_markdown(), ending="")
