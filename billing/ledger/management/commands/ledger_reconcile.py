import json

from django.core.management.base import BaseCommand, CommandError

from billing.ledger.reconciliation import reconciliation_run


class Command(BaseCommand):
    help = "Check the ledger's invariants, store the result, and list any discrepancy."

    def handle(self, *args, **options):
        run = reconciliation_run()
        if run.ok:
            self.stdout.write("ledger reconciled: no discrepancies")
            return
        for item in run.discrepancies:
            self.stdout.write(json.dumps(item, sort_keys=True))
        raise CommandError(f"{len(run.discrepancies)} ledger discrepancies")
