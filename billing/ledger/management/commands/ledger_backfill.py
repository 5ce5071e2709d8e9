from django.core.management.base import BaseCommand

from billing.ledger.services import ledger_backfill_paid_orders


class Command(BaseCommand):
    help = "Post every paid order that has no ledger posting yet (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args, batch_size: int, **options):
        posted = ledger_backfill_paid_orders(batch_size=batch_size)
        self.stdout.write(f"posted {posted} paid order(s)")
