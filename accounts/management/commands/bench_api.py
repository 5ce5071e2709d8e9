"""API speed under load: customer list, lookup, search and create against gunicorn.

    manage.py bench_api --customers 1000000 --rate 200 --duration 20
    manage.py bench_api --customers 1000000 --in-process 1000    # the application's CPU alone

Gives one organization N customers (one ``INSERT ... SELECT generate_series``; the trigram
indexes are dropped for the insert and built afterwards, which is several times faster than
keeping them up to date row by row), starts gunicorn on the app and drives each scenario of
``SCENARIOS`` at a fixed request rate from an open-loop generator (``core.bench.loadgen``),
then prints p50, p99, max and throughput beside each scenario's target. The floors (an
unauthenticated 404 and the authenticated organization read) show what any request costs on
the same server. On a fresh seed it also times the queries the API ran before the indexes
(``UPPER(email) = UPPER(...)``, the text search with no trigram index) straight in SQL.

A database that already holds the bench organization is reused (``make bench`` starts from a
fresh one). To add a scenario, add a ``Scenario`` to ``SCENARIOS``; an app above accounts appends
its own from a ``bench_scenarios.py`` module (found like ``admin.py``), with a ``prepare`` step
that seeds what it reads.
"""

import json
import logging
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connection
from django.db.models import QuerySet
from django.test.utils import override_settings
from django.utils.module_loading import autodiscover_modules

from accounts.bench_population import LAST, customer_email, customer_name, customers_seed
from accounts.models import Customer, Organization
from accounts.selectors import customer_text_match, customers_matching, email_equals
from accounts.services import access_token_create, organization_create
from core import clock
from core.bench.cpu import machine_pace, pids_cpu, tree_cpu
from core.bench.inprocess import serve
from core.bench.loadgen import Request, Result, run_open_loop
from core.bench.server import gunicorn, wait_until_idle

BENCH_SLUG = "api-bench"
WORKERS = 4
THREADS = 1


@dataclass(frozen=True)
class Bench:
    """What request makers need: the seeded population and this run's token."""

    customers: int
    token: str
    run: str
    started: datetime
    rng: random.Random

    def auth(self, **headers: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **headers}

    def any_customer(self) -> int:
        return self.rng.randint(1, self.customers)

    def get(self, path: str, **params) -> Request:
        return Request("GET", f"{path}?{urlencode(params)}" if params else path, self.auth())


@dataclass(frozen=True)
class Cpu:
    """CPU milliseconds per answered request, by whom: the gunicorn workers, the database
    backends serving them, and this process (the load generator)."""

    server: float
    database: float
    generator: float

    def __str__(self) -> str:
        return f"cpu/req server {self.server:4.1f} db {self.database:4.1f} generator {self.generator:4.1f} ms"


@dataclass(frozen=True)
class Scenario:
    name: str
    what: str
    make: Callable[[Bench, int], Request]
    status: int = 200
    target_p99_ms: float | None = None
    # Seeds what the scenario reads, given the bench organization and the crowd's size
    # (idempotent); returns a line for the report.
    prepare: Callable[[Organization, int], str] | None = None


@dataclass(frozen=True)
class Measured:
    scenario: Scenario
    result: Result
    cpu: Cpu
    pace: float  # machine_pace() just before the scenario's load, in seconds


def _list(bench: Bench, i: int) -> Request:
    if i % 2 == 0:
        return bench.get("/v1/customers", limit=20)
    # A page further back, as the next cursor would give: customer k was created k seconds ago.
    before = bench.started - timedelta(seconds=bench.any_customer())
    return bench.get("/v1/customers", limit=20, created_before=before.isoformat())


def _lookup(bench: Bench, i: int) -> Request:
    return bench.get("/v1/customers", email=customer_email(bench.any_customer()).title())


def _search(bench: Bench, i: int) -> Request:
    k = bench.any_customer()
    return bench.get("/v1/customers", query=customer_email(k).split("@")[0].split(".", 1)[1])


def _search_name(bench: Bench, i: int) -> Request:
    return bench.get("/v1/customers", query=customer_name(bench.any_customer()))


def _create(bench: Bench, i: int) -> Request:
    body = {"email": f"new.{bench.run}.{i}@bench.example", "name": f"New customer {i}"}
    headers = bench.auth(**{"Idempotency-Key": f"{bench.run}-{i}", "Content-Type": "application/json"})
    return Request("POST", "/v1/customers", headers, json.dumps(body).encode())


SCENARIOS: list[Scenario] = [
    Scenario("floor_404", "unknown /v1/ path, no token", lambda b, i: Request("GET", "/v1/bench-floor"), 404),
    Scenario("floor_auth", "GET /v1/organization", lambda b, i: b.get("/v1/organization")),
    Scenario("list", "GET /v1/customers?limit=20 (first page, or created_before)", _list, target_p99_ms=50),
    Scenario("lookup", "GET /v1/customers?email=", _lookup, target_p99_ms=20),
    Scenario("search", "GET /v1/customers?query=<last name.number>", _search, target_p99_ms=20),
    Scenario("search_name", "GET /v1/customers?query=<full name>", _search_name, target_p99_ms=20),
    Scenario("create", "POST /v1/customers + Idempotency-Key", _create, 201, target_p99_ms=50),
]


def _warm_up_request(make: Callable[[int], Request], i: int) -> Request:
    return make(-1 - i)  # numbers the counted run does not use (idempotency keys, e-mails)


def trigram_indexes() -> list[GinIndex]:
    return [index for index in Customer._meta.indexes if isinstance(index, GinIndex)]


def missing_indexes() -> list[GinIndex]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = %s", [Customer._meta.db_table])
        present = {row[0] for row in cursor.fetchall()}
    return [index for index in trigram_indexes() if index.name not in present]


def query_ms(queryset: QuerySet, runs: int = 3) -> float:
    sql, params = queryset.query.sql_with_params()
    timings = []
    with connection.cursor() as cursor:
        for _ in range(runs):
            started = time.perf_counter()
            cursor.execute(sql, params)
            cursor.fetchall()
            timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def fetch_ms(queryset: QuerySet, runs: int = 3) -> float:
    """Through the ORM (and so the plan guard), median of ``runs``."""
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        list(queryset.all())
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


class Command(BaseCommand):
    help = __doc__.splitlines()[0]

    def add_arguments(self, parser):
        parser.add_argument("--customers", type=int, default=1_000_000)
        parser.add_argument("--rate", type=float, default=200, help="requests per second")
        parser.add_argument("--duration", type=float, default=20, help="seconds per scenario")
        parser.add_argument("--workers", type=int, default=WORKERS, help="gunicorn worker processes")
        parser.add_argument(
            "--threads", type=int, default=THREADS, help="threads per worker (above 1: gthread workers)"
        )
        parser.add_argument("--scenarios", default="", help="comma-separated names (default: all)")
        parser.add_argument(
            "--in-process",
            type=int,
            default=0,
            metavar="N",
            help="serve N requests of each scenario through Django in this process, one at a time, "
            "instead of the load run: the application's own CPU per request",
        )
        parser.add_argument("--json", dest="json_path", default="", help="also write the results here")

    def handle(
        self, *args, customers, rate, duration, workers, threads, scenarios, json_path, in_process, **options
    ):
        autodiscover_modules("bench_scenarios")  # apps above accounts append theirs to SCENARIOS
        chosen = [s for s in SCENARIOS if not scenarios or s.name in scenarios.split(",")]
        if not chosen:
            raise CommandError(f"No such scenario; choose from {', '.join(s.name for s in SCENARIOS)}.")
        organization, started, before = self._population(customers)
        for scenario in chosen:
            if scenario.prepare is not None:
                self.stdout.write(scenario.prepare(organization, customers))
        self._settle()
        _, secret = access_token_create(organization=organization, name=f"bench {clock.now():%H:%M:%S}")
        bench = Bench(
            customers=customers,
            token=secret,
            run=uuid.uuid4().hex[:8],
            started=started,
            rng=random.Random(7),
        )
        if in_process:
            self._in_process(bench, chosen, in_process)
            return
        results = self._drive(bench, chosen, rate=rate, duration=duration, workers=workers, threads=threads)
        self._report(customers, rate, duration, self._server(workers, threads), results, before)
        if json_path:
            Path(json_path).write_text(json.dumps(self._summary(results, before), indent=2))

    # --- the population

    def _population(self, n: int) -> tuple[Organization, datetime, dict[str, float]]:
        organization = Organization.objects.filter(slug=BENCH_SLUG).first()
        before: dict[str, float] = {}
        if organization is None:
            organization = organization_create(name="API bench", slug=BENCH_SLUG)
        have = organization.customers.count()
        if have == 0:
            before = self._seed(organization, n)
        elif have < n:
            raise CommandError(
                f"The bench organization has {have:,} customers, fewer than {n:,}: drop the database."
            )
        else:
            self.stdout.write(f"Reusing {have:,} customers.")
        with connection.schema_editor() as editor:
            for index in missing_indexes():  # an interrupted seed leaves them dropped
                editor.add_index(Customer, index)
        # Customer k was created k seconds before the seed's "now" (list pages reach back by it).
        newest = (
            organization.customers.filter(external_id="crm_1").values_list("created_at", flat=True).first()
        )
        return organization, newest + timedelta(seconds=1), before

    def _seed(self, organization: Organization, n: int) -> dict[str, float]:
        now = clock.now()
        started = time.perf_counter()
        with connection.schema_editor() as editor:
            for index in trigram_indexes():
                editor.remove_index(Customer, index)
        customers_seed(organization=organization, n=n, now=now)
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE accounts_customer")
        self.stdout.write(f"Seeded {n:,} customers in {time.perf_counter() - started:.1f} s.")
        before = self._time_queries(organization, n, label="without the trigram indexes")
        started = time.perf_counter()
        with connection.cursor() as cursor, connection.schema_editor() as editor:
            cursor.execute("SET maintenance_work_mem = '256MB'")
            for index in trigram_indexes():
                editor.add_index(Customer, index)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE accounts_customer")
        self.stdout.write(f"Built the trigram indexes in {time.perf_counter() - started:.1f} s.")
        after = self._time_queries(organization, n, label="with them")
        self._time_a_term_the_statistics_hold(organization)
        return {**before, "search_indexed": after["search"]}

    def _time_a_term_the_statistics_hold(self, organization: Organization) -> None:
        """A search for a customer whose e-mail ANALYZE kept among the e-mail index's histogram
        bounds: the planner takes it to match 1% of the table (core/postgresql/plans.py)."""
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT histogram_bounds::text::text[] FROM pg_stats WHERE tablename = %s",
                ["customer_email_trgm_idx"],
            )
            row = cursor.fetchone()
        if not row or not row[0]:
            return
        email = row[0][len(row[0]) // 2].lower()
        term = email.split("@")[0].split(".", 1)[-1]  # as the search scenario asks
        customers = Customer.objects.filter(organization=organization).order_by("-created_at", "-id")
        plain = customers.filter(customer_text_match(term))[:21]
        plan = "a walk of created_at" if "Bitmap Heap Scan" not in plain.explain() else "the trigram index"
        guard_log = logging.getLogger("core.postgresql.plans")
        level = guard_log.level
        guard_log.setLevel(logging.ERROR)  # its warnings are what is measured here
        try:
            guarded = fetch_ms(customers_matching(customers, term)[:21])
        finally:
            guard_log.setLevel(level)
        self.stdout.write(
            f"A term the statistics hold ({term!r}, planned as {plan}): {query_ms(plain):.1f} ms as "
            f"planned, {guarded:.1f} ms through the plan guard"
        )

    def _settle(self) -> None:
        """What a seed wrote goes to the disk before the load, as it would have long before in
        production: else the first scenarios share the cores and the disk with the server's
        checkpoint and the kernel's writeback of a gigabyte or more."""
        started = time.perf_counter()
        try:
            with connection.cursor() as cursor:
                cursor.execute("CHECKPOINT")
        except DatabaseError as exc:  # needs a superuser or pg_checkpoint
            self.stdout.write(f"No CHECKPOINT before the load ({exc}).")
        os.sync()
        if (waited := time.perf_counter() - started) > 1:
            self.stdout.write(f"Waited {waited:.0f} s for the seed's writes to reach the disk.")

    def _time_queries(self, organization: Organization, n: int, *, label: str) -> dict[str, float]:
        """The database time of the queries the API ran before, median of 3."""
        customers = Customer.objects.filter(organization=organization).order_by("-created_at", "-id")
        k = n // 3
        timings = {
            "lookup_upper": query_ms(customers.filter(email__iexact=customer_email(k))[:21]),
            "lookup_lower": query_ms(customers.filter(email_equals("email", customer_email(k)))[:21]),
            "search": query_ms(customers.filter(customer_text_match(f"{LAST[0].lower()}.{k}"))[:21]),
        }
        self.stdout.write(
            f"SQL alone, {label}: lookup as UPPER(email) = UPPER(...) {timings['lookup_upper']:.1f} ms, "
            f"as lower(email) = lower(...) {timings['lookup_lower']:.1f} ms, "
            f"text search {timings['search']:.1f} ms"
        )
        return timings

    # --- the load

    def _drive(self, bench: Bench, chosen: list[Scenario], *, rate, duration, workers, threads) -> list:
        db = connection.settings_dict
        env = {
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}",
            "DATABASE_CONN_MAX_AGE": "600",
            "CACHE_URL": settings.CACHES["default"]["LOCATION"],
            "RECUR_API_RATE_LIMIT": str(10**9),
            "DJANGO_DEBUG": "false",
            "LOG_LEVEL": "WARNING",
        }
        results = []
        with tempfile.TemporaryDirectory() as tmp:
            log = Path(tmp) / "gunicorn.log"
            with gunicorn(env=env, workers=workers, threads=threads, log=log) as server:
                port = server.port
                for scenario in chosen:
                    make = partial(scenario.make, bench)
                    # A short warm-up (connections, caches) that is not counted.
                    warm_up = partial(_warm_up_request, make)
                    run_open_loop(host="127.0.0.1", port=port, make=warm_up, rate=min(rate, 50), duration=0.5)
                    backends = self._backends()
                    pace = machine_pace()
                    before = (tree_cpu(server.pid), pids_cpu(backends), time.process_time())
                    result = run_open_loop(
                        host="127.0.0.1", port=port, make=make, rate=rate, duration=duration
                    )
                    after = (tree_cpu(server.pid), pids_cpu(backends), time.process_time())
                    answered = max(1, len(result.latencies_ms))
                    cpu = Cpu(*((b - a) * 1000 / answered for a, b in zip(before, after, strict=True)))
                    measured = Measured(scenario, result, cpu, pace)
                    results.append(measured)
                    self.stdout.write(self._line(measured))
                    waited = wait_until_idle(port)
                    if waited > 1:
                        self.stdout.write(
                            f"    (waited {waited:.0f} s for the server to serve what was queued)"
                        )
        return results

    def _in_process(self, bench: Bench, chosen: list[Scenario], requests: int) -> None:
        self.stdout.write(
            f"{requests} requests per scenario through Django's WSGI handler in this process, one at "
            "a time (CPU per request: this process, and its database backend):"
        )
        connection.close()  # reconnect persistent, as gunicorn's workers are
        saved = connection.settings_dict["CONN_MAX_AGE"]
        connection.settings_dict["CONN_MAX_AGE"] = 600
        request_log = logging.getLogger("django.request")  # a line per 404 on this terminal
        level, request_log.level = request_log.level, logging.ERROR
        try:
            with override_settings(DEBUG=False, RECUR_API_RATE_LIMIT=10**9):
                for scenario in chosen:
                    pace = machine_pace()
                    make = partial(scenario.make, bench)
                    served = serve(make, requests, warm_up=partial(_warm_up_request, make))
                    wrong = sum(c for status, c in served.statuses.items() if status != scenario.status)
                    self.stdout.write(
                        f"{scenario.name:<12} cpu/req {served.cpu_ms:5.2f} ms  db {served.database_ms:5.2f} ms  "
                        f"wall {served.wall_ms:5.2f} ms  db round trips {served.round_trips:4.1f}  "
                        f"{wrong} not {scenario.status}  pace {pace:4.2f} s"
                    )
        finally:
            request_log.level = level
            connection.close()
            connection.settings_dict["CONN_MAX_AGE"] = saved

    def _backends(self) -> list[int]:
        """The database backends of the server's connections (persistent, so made by now)."""
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            return [row[0] for row in cursor.fetchall()]

    # --- the report

    @staticmethod
    def _server(workers: int, threads: int) -> str:
        if threads > 1:
            return f"gunicorn with {workers} gthread workers of {threads} threads"
        return f"gunicorn with {workers} sync workers"

    def _line(self, measured: Measured) -> str:
        scenario, result = measured.scenario, measured.result
        p50, p99 = result.percentile(50), result.percentile(99)
        wrong = sum(c for status, c in result.statuses.items() if status != scenario.status)
        wrong += sum(result.errors.values())
        if p99 is None:
            verdict = "no answers"
        elif scenario.target_p99_ms is None:
            verdict = "floor"
        else:
            verdict = "ok" if p99 <= scenario.target_p99_ms and not wrong else "MISSED"
        target = f"< {scenario.target_p99_ms:g} ms" if scenario.target_p99_ms else ""
        return (
            f"{scenario.name:<12} p50 {p50 or 0:7.1f} ms  p99 {p99 or 0:7.1f} ms  "
            f"max {max(result.latencies_ms, default=0):7.1f} ms  {result.throughput:6.1f} req/s  "
            f"{result.sent} sent, {wrong} not {scenario.status}  {target:>9}  {verdict}"
            f"  {measured.cpu}  pace {measured.pace:4.2f} s"
        )

    def _report(self, customers, rate, duration, server, results, before) -> None:
        self.stdout.write(
            f"\n{customers:,} customers, {rate:g} requests/s for {duration:g} s per scenario, "
            f"{server} (latency from each request's scheduled send time; pace: the CPU seconds of "
            f"a 10M-step Python loop just before the scenario, how fast the machine was):"
        )
        for measured in results:
            scenario, result = measured.scenario, measured.result
            self.stdout.write(self._line(measured))
            odd = {**{str(k): v for k, v in result.statuses.items() if k != scenario.status}, **result.errors}
            if odd:
                self.stdout.write(f"    unexpected answers: {odd}")
        floors = {m.scenario.name: m.result for m in results if m.scenario.target_p99_ms is None}
        if (floor := floors.get("floor_auth")) and floor.latencies_ms:
            self.stdout.write("Beside the authenticated floor of this run (GET /v1/organization):")
            for m in results:
                if m.scenario.target_p99_ms is not None and m.result.latencies_ms:
                    self.stdout.write(
                        f"  {m.scenario.name:<12} p50 {m.result.percentile(50):7.1f} (floor {floor.percentile(50):5.1f})"
                        f"  p99 {m.result.percentile(99):7.1f} (floor {floor.percentile(99):5.1f}) ms"
                    )

    def _summary(self, results, before) -> dict:
        return {
            "sql_before_ms": before,
            "scenarios": {
                m.scenario.name: {
                    "p50_ms": m.result.percentile(50),
                    "p99_ms": m.result.percentile(99),
                    "throughput": m.result.throughput,
                    "sent": m.result.sent,
                    "statuses": {str(k): v for k, v in m.result.statuses.items()},
                    "errors": dict(m.result.errors),
                    "target_p99_ms": m.scenario.target_p99_ms,
                    "cpu_ms_per_request": vars(m.cpu),
                    "machine_pace_s": m.pace,
                }
                for m in results
            },
        }
