"""The customer state's cost in one process, beside the authenticated floor, without HTTP.

    DJANGO_DEBUG=false manage.py bench_state --customers 1000000 --requests 2000

On ``bench_api``'s crowd (seeded if the database has none, reused if it has) and its state
scenario's rows (every tenth customer: a subscription and three grants), times in turn, for
random seeded customers: ``GET /v1/organization`` (token, throttle, one row: what every
authenticated request costs), ``GET /v1/customers/{id}/state`` and the external id's route,
through Django's test client (the whole middleware and DRF stack, no socket), and the read
alone (``customer_state`` and its rendering). Interleaved, so a noisy neighbour slows each
kind alike. Prints p50, p99, the mean and the mean CPU time of this process (the database's
own time excluded: on a shared machine, the part that does not depend on waiting for a core),
and the queries of one request of each kind.
"""

import random
import statistics
import time
from collections.abc import Callable

from django.core.management.base import BaseCommand
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext

from accounts.management.commands.bench_api import Command as BenchApi
from accounts.models import Customer
from accounts.services import access_token_create
from benefits.bench_scenarios import STATE_EVERY, state_seed
from benefits.state import customer_state, state_customer
from benefits.state_api import state_representation
from core import clock


def _ms(timings: list[float], p: int) -> float:
    return statistics.quantiles(timings, n=100, method="inclusive")[p - 1] if len(timings) > 1 else timings[0]


class Command(BaseCommand):
    help = __doc__.splitlines()[0]

    def add_arguments(self, parser):
        parser.add_argument("--customers", type=int, default=1_000_000)
        parser.add_argument("--requests", type=int, default=2000, help="of each kind")

    @override_settings(RECUR_API_RATE_LIMIT=10**9)
    def handle(self, *args, customers, requests, **options):
        organization, _, _ = BenchApi(stdout=self.stdout)._population(customers)
        self.stdout.write(state_seed(organization, customers))
        _, secret = access_token_create(organization=organization, name=f"bench state {clock.now():%H:%M:%S}")
        client = Client(HTTP_AUTHORIZATION=f"Bearer {secret}", HTTP_HOST="localhost")
        rng = random.Random(7)
        holders = customers // STATE_EVERY

        def external_id() -> str:
            return f"crm_{STATE_EVERY * rng.randint(1, holders)}"

        ids = dict(
            Customer.objects.filter(
                organization=organization, external_id__in=[external_id() for _ in range(requests)]
            ).values_list("external_id", "id")
        )
        targets = list(ids.items())

        def get(path: str) -> Callable[[], None]:
            def run() -> None:
                response = client.get(path)
                assert response.status_code == 200, response.content

            return run

        def kinds() -> dict[str, Callable[[], None]]:
            ext, pk = rng.choice(targets)
            return {
                "floor: GET /v1/organization": get("/v1/organization"),
                "GET /v1/customers/{id}/state": get(f"/v1/customers/{pk}/state"),
                "GET /v1/customers/external/{external_id}/state": get(f"/v1/customers/external/{ext}/state"),
                "the read alone (3 queries + rendering)": lambda: state_representation(
                    customer_state(customer=state_customer(organization=organization, pk=pk))
                ),
            }

        for run in kinds().values():  # warm-up: connections, the first token use, imports
            run()
        self.stdout.write("Queries of one request:")
        for name, run in kinds().items():
            with CaptureQueriesContext(connection) as captured:
                run()
            self.stdout.write(f"  {name:<48} {len(captured)}")
        timings: dict[str, list[float]] = {}
        cpu: dict[str, float] = {}
        for _ in range(requests):
            for name, run in kinds().items():
                started, started_cpu = time.perf_counter(), time.process_time()
                run()
                timings.setdefault(name, []).append((time.perf_counter() - started) * 1000)
                cpu[name] = cpu.get(name, 0.0) + (time.process_time() - started_cpu) * 1000
        self.stdout.write(
            f"\n{requests} of each kind, in-process, {customers:,} customers ({holders:,} with state):"
        )
        for name, values in timings.items():
            self.stdout.write(
                f"  {name:<48} p50 {_ms(values, 50):6.2f} ms  p99 {_ms(values, 99):6.2f} ms  "
                f"mean {statistics.fmean(values):6.2f} ms  CPU {cpu[name] / len(values):6.2f} ms"
            )
