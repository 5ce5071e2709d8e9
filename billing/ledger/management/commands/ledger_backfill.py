from django.core.management.base import BaseCommand

from billing.ledger.backfill import ledger_backfill


class Command(BaseCommand):
    help = (
        "Post everything that has no ledger posting yet: paid orders, stored processor fees, "
        "refunds (and failed refunds' reversals), disputes (withdrawals, fees, reinstatements). "
        "Idempotent: a second run posts nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args, batch_size: int, **options):
        result = ledger_backfill(batch_size=batch_size)
        self.stdout.write(f"posted {result.orders} paid order(s)")
        self.stdout.write(
            f"posted {result.processor_fees} processor fee(s), {result.refunds} refund(s), "
            f"{result.refund_reversals} refund reversal(s), {result.disputes} dispute withdrawal(s), "
            f"{result.dispute_reversals} dispute reinstatement(s)"
        )
