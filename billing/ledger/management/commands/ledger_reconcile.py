import json

from django.core.management.base import BaseCommand, CommandError

from billing.ledger.reconciliation import reconciliation_run
from billing.ledger.reconciliation.invariants import invariants_run


class Command(BaseCommand):
    help = (
        "Check the ledger's invariants and the invariants watched continuously (stranded orders, "
        "payments, claims, renewals, refunds), store both results, and list what fails."
    )

    def handle(self, *args, **options):
        run = reconciliation_run()
        if run.ok:
            self.stdout.write("ledger reconciled: no discrepancies")
        for item in run.discrepancies:
            self.stdout.write(json.dumps(item, sort_keys=True))
        checks = invariants_run()  # after the reconciliation, so "ledger_reconciled" reads this run
        failing = checks.failing
        if not failing:
            self.stdout.write(f"invariants: all {len(checks.results)} hold")
        for result in failing:
            item = {"invariant": result["name"], "count": result["count"], "examples": result["examples"]}
            item.update({key: result[key] for key in ("note", "error") if result.get(key)})
            self.stdout.write(json.dumps(item, sort_keys=True))
        problems = []
        if not run.ok:
            problems.append(f"{len(run.discrepancies)} ledger discrepancies")
        if failing:
            names = ", ".join(result["name"] for result in failing)
            problems.append(f"{len(failing)} invariant(s) failing ({names})")
        if problems:
            raise CommandError("; ".join(problems))
