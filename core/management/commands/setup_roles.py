from django.core.management.base import BaseCommand

from core.roles import roles_install


class Command(BaseCommand):
    help = "Create the operator groups (support, finance, admin) and sync their permissions with core.roles."

    def handle(self, *args, **options):
        for change in roles_install():
            state = "created" if change.created else ("updated" if change.changed else "unchanged")
            self.stdout.write(f"{change.role}: {state} (+{len(change.added)} -{len(change.removed)})")
            if options["verbosity"] > 1 or not change.created:
                for label in change.added:
                    self.stdout.write(f"  + {label}")
                for label in change.removed:
                    self.stdout.write(f"  - {label}")
