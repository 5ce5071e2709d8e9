"""Renewal throughput: the dispatcher against a set-based SQL baseline writing the same rows.

    manage.py bench_renewals --n 100000

Seeds N due monthly subscriptions for a throwaway organization, times ``renewals_run``
(claim in chunks, cycle each chunk in one transaction, payments excluded), then seeds N
more and times one INSERT ... SELECT per table plus one UPDATE doing the same writes
(orders, order items, billing entries, advanced periods). Prints renewals per second and
the ratio. Everything it created is deleted at the end.
"""

import multiprocessing
import time
import uuid
from datetime import timedelta

from dateutil.relativedelta import relativedelta
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, connections, transaction

from accounts.models import Customer, Organization
from accounts.services import organization_create
from billing.catalog.services import product_create
from billing.orders.models import Order
from billing.subscriptions import renewals
from billing.subscriptions.models import BillingEntry, Subscription
from core import clock


def _load_broker_client() -> None:
    """A Celery worker has its broker client loaded; these fresh processes load it before the
    clock starts (forked workers inherit the modules, never a connection)."""
    from kombu import Connection

    from config.celery import app

    Connection(app.conf.broker_url).transport  # noqa: B018 (imports the transport, connects nothing)
    app.amqp  # noqa: B018
    app.backend  # noqa: B018


def _worker(now, chunk: int) -> int:
    connections.close_all()
    try:
        return renewals.renewals_run(now=now, chunk=chunk, collect=False).cycled
    finally:
        connections.close_all()


class Command(BaseCommand):
    help = __doc__.splitlines()[0]

    def add_arguments(self, parser):
        parser.add_argument("--n", type=int, default=100_000, help="subscriptions to renew")
        parser.add_argument("--chunk", type=int, default=renewals.CHUNK)
        parser.add_argument("--customers", type=int, default=1000)
        parser.add_argument(
            "--workers",
            type=int,
            default=2,
            help="dispatcher processes claiming chunks side by side (SKIP LOCKED)",
        )

    def handle(self, *args, n: int, chunk: int, customers: int, workers: int, **options):
        now = clock.now()
        org = organization_create(name=f"Bench {uuid.uuid4().hex[:6]}")
        try:
            product = product_create(
                organization=org,
                name="Bench monthly",
                recurring_interval="month",
                prices=[{"currency": "usd", "type": "fixed", "amount": 2000}],
            )
            buyers = Customer.objects.bulk_create(
                Customer(organization=org, email=f"bench{i}@example.com") for i in range(customers)
            )
            self._seed(org, product, buyers, n, now)
            started = time.perf_counter()
            cycled = self._dispatch(now=now, chunk=chunk, workers=workers)
            ours = time.perf_counter() - started
            if cycled != n:
                raise CommandError(f"expected {n} renewals, got {cycled}")
            self.stdout.write(
                f"dispatcher: {n} renewals in {ours:.2f} s = {n / ours:,.0f} renewals/s "
                f"({workers} worker process{'es' if workers > 1 else ''}, chunk {chunk})"
            )

            Subscription.objects.filter(organization=org).update(status="canceled")
            self._seed(org, product, buyers, n, now)
            started = time.perf_counter()
            self._baseline(org, now)
            base = time.perf_counter() - started
            self.stdout.write(
                f"set-based SQL baseline: {n} renewals in {base:.2f} s = {n / base:,.0f} renewals/s"
            )
            self.stdout.write(f"ratio (dispatcher / baseline throughput): {base / ours:.2f}")
        finally:
            self._cleanup(org)

    def _dispatch(self, *, now, chunk: int, workers: int) -> int:
        """Run ``renewals_run`` in ``workers`` processes at once, as Celery workers would."""
        if workers <= 1:
            return renewals.renewals_run(now=now, chunk=chunk, collect=False).cycled
        connections.close_all()  # each process opens its own
        _load_broker_client()
        context = multiprocessing.get_context("fork")
        with context.Pool(workers) as pool:
            results = pool.starmap(_worker, [(now, chunk)] * workers)
        return sum(results)

    def _seed(self, org, product, buyers, n, now) -> None:
        price = product.prices.get()
        batch = []
        for i in range(n):
            end = now - timedelta(seconds=i % 3600 + 1)
            batch.append(
                Subscription(
                    organization=org, customer=buyers[i % len(buyers)], product=product, price=price,
                    status="active", currency="usd", amount=2000, billing_anchor=end,
                    current_period_start=end - relativedelta(months=1), current_period_end=end,
                )
            )  # fmt: skip
            if len(batch) == 5000:
                Subscription.objects.bulk_create(batch)
                batch = []
        Subscription.objects.bulk_create(batch)

    def _baseline(self, org, now) -> None:
        """The same rows, written by the database in four statements (no per-row logic)."""
        with transaction.atomic(), connection.cursor() as cursor:
            params = {"org": org.pk, "now": now}
            cursor.execute(
                """
                CREATE TEMP TABLE bench_due ON COMMIT DROP AS
                SELECT s.id AS subscription_id, gen_random_uuid() AS order_id, s.customer_id, s.product_id,
                       s.price_id, s.amount, s.currency, s.current_period_end AS start,
                       s.current_period_end + interval '1 month' AS "end"
                FROM subscriptions_subscription s
                WHERE s.organization_id = %(org)s AND s.status = 'active' AND s.current_period_end <= %(now)s
                FOR UPDATE
                """,
                params,
            )
            cursor.execute(
                """
                INSERT INTO orders_order (id, created_at, updated_at, organization_id, customer_id, status,
                    billing_reason, currency, subtotal, discount_amount, net, tax, total, applied_balance, due,
                    refunded_amount, platform_fee, tax_rate_bps, tax_inclusive, reverse_charge, billing_name,
                    customer_tax_id, subscription_id, product_id, period_start, period_end, metadata,
                    dunning_attempts, payment_hold)
                SELECT order_id, %(now)s, %(now)s, %(org)s, customer_id, 'pending', 'subscription_cycle', currency,
                    amount, 0, amount, 0, amount, 0, amount, 0, 0, 0, false, false, '', '', subscription_id,
                    product_id, start, "end", '{}', 0, ''
                FROM bench_due
                """,
                params,
            )
            cursor.execute(
                """
                INSERT INTO orders_orderitem (id, created_at, updated_at, order_id, label, amount, quantity,
                    proration, price_id, period_start, period_end)
                SELECT gen_random_uuid(), %(now)s, %(now)s, order_id, 'Bench monthly', amount, 1, false, price_id,
                    start, "end" FROM bench_due
                """,
                params,
            )
            cursor.execute(
                """
                INSERT INTO subscriptions_billingentry (id, created_at, updated_at, organization_id,
                    subscription_id, kind, label, amount, currency, period_start, period_end, order_id)
                SELECT gen_random_uuid(), %(now)s, %(now)s, %(org)s, subscription_id, 'cycle', 'Bench monthly',
                    amount, currency, start, "end", order_id FROM bench_due
                """,
                params,
            )
            cursor.execute(
                """
                UPDATE subscriptions_subscription s SET current_period_start = d.start,
                    current_period_end = d."end", updated_at = %(now)s
                FROM bench_due d WHERE s.id = d.subscription_id
                """,
                params,
            )

    def _cleanup(self, org: Organization) -> None:
        with connection.cursor() as cursor:
            for table, column in [
                (
                    "events_eventhandling",
                    "event_id IN (SELECT id FROM events_event WHERE organization_id = %s)",
                ),
                ("events_event", "organization_id = %s"),
                ("orders_orderitem", "order_id IN (SELECT id FROM orders_order WHERE organization_id = %s)"),
                ("subscriptions_billingentry", "organization_id = %s"),
                ("orders_order", "organization_id = %s"),
                ("subscriptions_subscription", "organization_id = %s"),
            ]:
                cursor.execute(f"DELETE FROM {table} WHERE {column}", [org.pk])
        for model in (BillingEntry, Order):
            assert not model.objects.filter(organization=org).exists()
        org.prices.all().delete()
        org.products.all().delete()
        org.customers.all().delete()
        org.delete()
