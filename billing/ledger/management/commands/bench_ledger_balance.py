"""Merchant balance speed: one organization's balance over N ledger entries.

    manage.py bench_ledger_balance --entries 1000000

Seeds N balanced payment transactions for a throwaway organization in one
``INSERT ... SELECT generate_series`` per table (each: a credit to the merchant's balance
and the matching debit to processor cash, so 2N entries; the deferred balance trigger
checks all of them at commit), runs VACUUM ANALYZE as autovacuum would, then times
``merchant_balance`` (the trigger-kept running balance), ``available_balance`` (running
balance less the hold window's entries) and, for comparison, the plain sum over every
entry (median of --runs, in ms). Everything it
created is removed at the end unless --keep: entries cannot be deleted, so the cleanup
disables the immutability trigger inside its own transaction (DDL is transactional; the
table lock keeps every other session from seeing it off), for the bench's rows only.
"""

import statistics
import time
import uuid
from datetime import timedelta

from django.core.management.base import BaseCommand
from django.db import connection, transaction

from accounts.models import Organization
from accounts.services import organization_create
from billing.ledger import selectors
from billing.ledger.models import LedgerAccount
from billing.ledger.services import account_for
from core import clock

TARGET_MS = 50


class Command(BaseCommand):
    help = __doc__.splitlines()[0]

    def add_arguments(self, parser):
        parser.add_argument("--entries", type=int, default=1_000_000, help="entries on the merchant account")
        parser.add_argument("--runs", type=int, default=20)
        parser.add_argument("--currency", default="usd")
        parser.add_argument("--keep", action="store_true", help="leave the seeded rows in place")

    def handle(self, *args, entries: int, runs: int, currency: str, keep: bool, **options):
        org = organization_create(name=f"Ledger bench {uuid.uuid4().hex[:6]}")
        try:
            self._run(org, entries, runs, currency)
        finally:
            if not keep:
                self._cleanup(org)

    def _run(self, org: Organization, n: int, runs: int, currency: str) -> None:
        merchant = account_for(LedgerAccount.Kind.MERCHANT_BALANCE, org, currency=currency)
        cash = account_for(LedgerAccount.Kind.PROCESSOR_CASH, currency=currency)
        now = clock.now()
        prefix = f"bench:{org.pk}:"
        started = time.perf_counter()
        with transaction.atomic(), connection.cursor() as cursor:
            # One entry a minute back from now: 1,000,000 span ~694 days, so the hold cuts in.
            cursor.execute(
                """
                INSERT INTO ledger_ledgertransaction
                    (id, created_at, type, organization_id, idempotency_key, description)
                SELECT md5(%(prefix)s || i)::uuid, %(now)s - i * interval '1 minute', 'payment',
                       %(org)s, %(prefix)s || i, ''
                  FROM generate_series(1, %(n)s) AS i
                """,
                {"prefix": prefix, "now": now, "org": org.pk, "n": n},
            )
            cursor.execute(
                """
                INSERT INTO ledger_ledgerentry (created_at, transaction_id, account_id, amount, currency)
                SELECT %(now)s - i * interval '1 minute', md5(%(prefix)s || i)::uuid, side.account,
                       side.sign * (100 + i %% 9900), %(currency)s
                  FROM generate_series(1, %(n)s) AS i
                 CROSS JOIN (VALUES (%(merchant)s::uuid, -1), (%(cash)s::uuid, 1)) AS side(account, sign)
                """,
                {"prefix": prefix, "now": now, "n": n, "merchant": merchant.pk, "cash": cash.pk,
                 "currency": currency},
            )  # fmt: skip
        seeded = time.perf_counter() - started
        self.stdout.write(
            f"seeded {n:,} transactions / {2 * n:,} entries (checked at commit) in {seeded:.1f} s"
        )
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE ledger_ledgerentry")
            cursor.execute("ANALYZE ledger_ledgertransaction")

        expected = sum(100 + i % 9900 for i in range(1, n + 1))
        balance = selectors.merchant_balance(org, currency)
        assert balance == expected, (balance, expected)
        at = clock.now()
        cutoff_expected = sum(
            100 + i % 9900 for i in range(1, n + 1) if now - timedelta(minutes=i) < at - timedelta(days=org.payout_hold_days)
        )  # fmt: skip
        assert selectors.available_balance(org, currency, at) == cutoff_expected

        for name, call in [
            ("merchant_balance", lambda: selectors.merchant_balance(org, currency)),
            ("available_balance", lambda: selectors.available_balance(org, currency, at)),
            ("sum over all entries (no running balance)", lambda: selectors.entries_sum(merchant)),
        ]:
            timings = []
            for _ in range(runs):
                t0 = time.perf_counter()
                call()
                timings.append((time.perf_counter() - t0) * 1000)
            median = statistics.median(timings)
            verdict = "OK" if median < TARGET_MS else f"SLOWER than {TARGET_MS} ms"
            self.stdout.write(
                f"{name}: median {median:.1f} ms, min {min(timings):.1f} ms, max {max(timings):.1f} ms "
                f"over {runs} runs ({n:,} entries) - {verdict}"
            )

    def _cleanup(self, org: Organization) -> None:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("ALTER TABLE ledger_ledgerentry DISABLE TRIGGER ledger_entry_immutable")
            cursor.execute(
                "ALTER TABLE ledger_ledgertransaction DISABLE TRIGGER ledger_transaction_immutable"
            )
            cursor.execute(
                "DELETE FROM ledger_ledgerentry WHERE transaction_id IN "
                "(SELECT id FROM ledger_ledgertransaction WHERE organization_id = %s)",
                [org.pk],
            )
            cursor.execute("DELETE FROM ledger_ledgertransaction WHERE organization_id = %s", [org.pk])
            cursor.execute("ALTER TABLE ledger_ledgerbalance DISABLE TRIGGER ledger_balance_guard")
            cursor.execute(
                "DELETE FROM ledger_ledgerbalance WHERE account_id IN "
                "(SELECT id FROM ledger_ledgeraccount WHERE organization_id = %s)",
                [org.pk],
            )
            cursor.execute("DELETE FROM ledger_ledgeraccount WHERE organization_id = %s", [org.pk])
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no pending events before ALTER TABLE
            cursor.execute("ALTER TABLE ledger_ledgerbalance ENABLE TRIGGER ledger_balance_guard")
            cursor.execute("ALTER TABLE ledger_ledgertransaction ENABLE TRIGGER ledger_transaction_immutable")
            cursor.execute("ALTER TABLE ledger_ledgerentry ENABLE TRIGGER ledger_entry_immutable")
        org.delete()
