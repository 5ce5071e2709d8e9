"""What the benefits consumer adds to renewals: its time on their ``subscription.cycled`` events.

    manage.py bench_benefit_events --n 10000

Seeds N due monthly subscriptions twice (a product without benefits, then one with a feature
flag every subscription already holds), renews them with ``renewals_run`` (the reference:
renewals per second, payments excluded, as ``bench_renewals``), then runs the "benefits"
consumer on the renewals' ``subscription.cycled`` events as the dispatcher does (batches of
``HANDLE_BATCH`` events, one transaction each) and, for comparison, one event per call.
With the benefit it also times processing the cycles the consumer asked for (the grants'
own work, done by ``benefits.process_grants`` after commit). A floor of plain round trips is
measured in the same run. Like ``bench_renewals`` it leaves the dispatch messages its
commits send on the configured broker (point CELERY_BROKER_URL at a scratch Redis database);
every row it created is deleted at the end.
"""

import time
import uuid
from datetime import timedelta

from dateutil.relativedelta import relativedelta
from django.core.management.base import BaseCommand
from django.db import connection, transaction

from accounts.models import Customer, Organization
from accounts.services import organization_create
from benefits import grants
from benefits.consumers import benefits_on_events
from benefits.models import Benefit, BenefitGrant, ProductBenefit
from billing.catalog.services import product_create
from billing.subscriptions import renewals
from billing.subscriptions.models import Subscription
from core import clock
from core.events.models import Event
from core.events.services import HANDLE_BATCH


class Command(BaseCommand):
    help = __doc__.splitlines()[0]

    def add_arguments(self, parser):
        parser.add_argument("--n", type=int, default=10_000, help="subscriptions renewed per case")
        parser.add_argument("--customers", type=int, default=1000)

    def handle(self, *args, n: int, customers: int, **options):
        now = clock.now()
        org = organization_create(name=f"Bench benefits {uuid.uuid4().hex[:6]}")
        try:
            buyers = Customer.objects.bulk_create(
                Customer(organization=org, email=f"bench{i}@example.com") for i in range(customers)
            )
            self.stdout.write(f"floor: 1,000 SELECT 1 round trips in {self._floor() * 1000:.0f} ms")
            for with_benefit in (False, True):
                self._case(org, buyers, n, now, with_benefit=with_benefit)
        finally:
            self._cleanup(org)

    def _case(self, org, buyers, n: int, now, *, with_benefit: bool) -> None:
        label = "a product with one benefit" if with_benefit else "a product without benefits"
        product = product_create(
            organization=org,
            name=f"Bench {'with' if with_benefit else 'without'}",
            recurring_interval="month",
            prices=[{"currency": "usd", "type": "fixed", "amount": 2000}],
        )
        subscriptions = self._seed(org, product, buyers, n, now)
        if with_benefit:
            benefit = Benefit.objects.create(
                organization=org, type="feature_flag", description="Bench", properties={"key": "bench"}
            )
            ProductBenefit.objects.create(organization=org, product=product, benefit=benefit, synced_at=now)
            BenefitGrant.objects.bulk_create(
                BenefitGrant(
                    organization=org, benefit=benefit, customer_id=s.customer_id, subscription=s,
                    status="granted", granted_at=now, next_attempt_at=None,
                )
                for s in subscriptions
            )  # fmt: skip
        started = time.perf_counter()
        cycled = renewals.renewals_run(now=now, collect=False).cycled
        renewing = time.perf_counter() - started
        events = list(
            Event.objects.filter(
                organization=org, type="subscription.cycled", object_id__in=[str(s.pk) for s in subscriptions]
            ).order_by("pk")
        )
        self.stdout.write(
            f"{label}: {cycled} renewals in {renewing:.2f} s = {cycled / renewing:,.0f} renewals/s; "
            f"{len(events)} subscription.cycled events"
        )
        batched = self._consume(events, HANDLE_BATCH)
        self._reset(org)
        single = self._consume(events, 1)
        self.stdout.write(
            f"  benefits consumer, batches of {HANDLE_BATCH}: {batched:.2f} s "
            f"({len(events) / batched:,.0f} events/s, {100 * batched / renewing:.1f}% of the renewal time); "
            f"one event per call: {single:.2f} s ({len(events) / single:,.0f} events/s)"
        )
        if with_benefit:
            due = grants.grants_due(limit=n)
            started = time.perf_counter()
            for grant_id in due:
                grants.grant_process(grant_id=grant_id)
            processing = time.perf_counter() - started
            left = BenefitGrant.objects.filter(organization=org, cycle_requested=True).count()
            self.stdout.write(
                f"  the {len(due)} cycles it asked for, processed one by one: {processing:.2f} s "
                f"({len(due) / processing:,.0f} grants/s; {left} left)"
            )

    def _consume(self, events: list, size: int) -> float:
        started = time.perf_counter()
        for start in range(0, len(events), size):
            with transaction.atomic():
                benefits_on_events(events[start : start + size])
        return time.perf_counter() - started

    def _reset(self, org) -> None:
        """Undo the cycle requests, so the second pass does the same work as the first."""
        BenefitGrant.objects.filter(organization=org).update(cycle_requested=False, next_attempt_at=None)

    def _floor(self) -> float:
        started = time.perf_counter()
        with connection.cursor() as cursor:
            for _ in range(1000):
                cursor.execute("SELECT 1")
        return time.perf_counter() - started

    def _seed(self, org, product, buyers, n: int, now) -> list:
        price = product.prices.get()
        rows = []
        for i in range(n):
            end = now - timedelta(seconds=i % 3600 + 1)
            rows.append(
                Subscription(
                    organization=org, customer=buyers[i % len(buyers)], product=product, price=price,
                    status="active", currency="usd", amount=2000, billing_anchor=end,
                    current_period_start=end - relativedelta(months=1), current_period_end=end,
                )
            )  # fmt: skip
        return Subscription.objects.bulk_create(rows, batch_size=5000)

    def _cleanup(self, org: Organization) -> None:
        with connection.cursor() as cursor:
            for table, column in [
                (
                    "events_eventhandling",
                    "event_id IN (SELECT id FROM events_event WHERE organization_id = %s)",
                ),
                ("events_event", "organization_id = %s"),
                ("benefits_benefitgrant", "organization_id = %s"),
                ("benefits_productbenefit", "organization_id = %s"),
                ("benefits_benefit", "organization_id = %s"),
                ("orders_orderitem", "order_id IN (SELECT id FROM orders_order WHERE organization_id = %s)"),
                ("subscriptions_billingentry", "organization_id = %s"),
                ("orders_order", "organization_id = %s"),
                ("subscriptions_subscription", "organization_id = %s"),
            ]:
                cursor.execute(f"DELETE FROM {table} WHERE {column}", [org.pk])
