"""The ``state`` scenario of ``manage.py bench_api``: GET a customer's state under load.

``state_seed`` gives every ``STATE_EVERY``-th customer of the bench crowd (``crm_10``,
``crm_20``, ...; 100,000 of a million) an active monthly subscription and three granted
benefits (a feature flag with metadata, a custom note, meter credits), with one
``INSERT ... SELECT`` per table: the rows the grant engine would leave, without running it.
Requests alternate between ``/v1/customers/{id}/state`` and the external id's route, for
random seeded customers. Found by the command's autodiscovery (``bench_scenarios`` modules).
"""

import time

from django.db import connection, transaction

from accounts.management.commands.bench_api import SCENARIOS, Bench, Scenario
from accounts.models import Organization
from benefits.models import Benefit
from benefits.services import benefit_properties_clean
from billing.catalog.models import Price, Product
from core import clock
from core.bench.loadgen import Request

STATE_EVERY = 10
PRODUCT_NAME = "State bench plan"
BENEFITS = (
    ("feature_flag", "Pro reports", {"key": "pro_reports", "metadata": {"max_reports": 50, "tier": "pro"}}),
    ("custom", "Priority support", {"note": "Write to support@example.com with your order number."}),
    ("meter_credit", "API calls", {"meter": "api_calls", "units": 10000}),
)
# What each strategy's grant() leaves on the grant (only meter credits keep a balance there).
GRANT_PROPERTIES = {"meter_credit": '{"meter": "api_calls", "credited": 10000, "cycles": 0}'}

# The seeded customers' ids, for the by-id requests (loaded by state_seed).
_customer_ids: list[str] = []


def state_seed(organization: Organization, customers: int) -> str:
    holders = customers // STATE_EVERY
    message = "Reusing the state scenario's subscriptions and grants."
    if not Product.objects.filter(organization=organization, name=PRODUCT_NAME).exists():
        started = time.perf_counter()
        _seed(organization, customers)
        message = (
            f"Seeded {holders:,} subscriptions with {holders * len(BENEFITS):,} grants "
            f"in {time.perf_counter() - started:.1f} s."
        )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.id FROM generate_series(%(every)s, %(n)s, %(every)s) AS i"
            " JOIN accounts_customer c ON c.organization_id = %(org)s AND c.external_id = 'crm_' || i",
            {"every": STATE_EVERY, "n": customers, "org": organization.pk},
        )
        _customer_ids[:] = [str(row[0]) for row in cursor.fetchall()]
    return message


def _seed(organization: Organization, customers: int) -> None:
    now = clock.now()
    with transaction.atomic():
        product = Product.objects.create(
            organization=organization, name=PRODUCT_NAME, recurring_interval="month"
        )
        price = Price.objects.create(
            organization=organization, product=product, currency="usd", type=Price.Type.FIXED, amount=2000
        )
        benefits = [
            Benefit.objects.create(
                organization=organization,
                type=type_name,
                description=description,
                properties=benefit_properties_clean(type=type_name, properties=properties),
            )
            for type_name, description, properties in BENEFITS
        ]
        with connection.cursor() as cursor:
            cursor.execute(
                """
                INSERT INTO subscriptions_subscription
                    (id, created_at, updated_at, organization_id, customer_id, product_id, price_id,
                     status, currency, amount, billing_anchor, current_period_start, current_period_end,
                     cancel_at_period_end, metadata, cancellation_comment, cancellation_reason,
                     pause_at_period_end)
                SELECT gen_random_uuid(), %(now)s, %(now)s, c.organization_id, c.id, %(product)s, %(price)s,
                       'active', 'usd', 2000, %(start)s, %(start)s, %(start)s + interval '1 month',
                       false, '{}', '', '', false
                  FROM generate_series(%(every)s, %(n)s, %(every)s) AS i
                  JOIN accounts_customer c ON c.organization_id = %(org)s AND c.external_id = 'crm_' || i
                """,
                {"now": now, "start": now.replace(day=1), "product": product.pk, "price": price.pk,
                 "every": STATE_EVERY, "n": customers, "org": organization.pk},
            )  # fmt: skip
            cursor.execute(
                """
                INSERT INTO benefits_benefitgrant
                    (id, created_at, updated_at, organization_id, benefit_id, customer_id, subscription_id,
                     status, wanted, cycle_requested, update_requested, properties, granted_at,
                     revoke_reason, revoked_by_operator, attempts, error)
                SELECT gen_random_uuid(), %(now)s, %(now)s, s.organization_id, b.id, s.customer_id, s.id,
                       'granted', 'granted', false, false, b.properties::jsonb, %(now)s, '', false, 0, ''
                  FROM subscriptions_subscription s
                 CROSS JOIN unnest(%(benefits)s::uuid[], %(properties)s::text[]) AS b(id, properties)
                 WHERE s.product_id = %(product)s
                """,
                {"now": now, "product": product.pk, "benefits": [b.pk for b in benefits],
                 "properties": [GRANT_PROPERTIES.get(b.type, "{}") for b in benefits]},
            )  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE subscriptions_subscription")
        cursor.execute("ANALYZE benefits_benefitgrant")


def _state(bench: Bench, i: int) -> Request:
    if i % 2 == 0:
        k = STATE_EVERY * bench.rng.randint(1, max(1, bench.customers // STATE_EVERY))
        return bench.get(f"/v1/customers/external/crm_{k}/state")
    return bench.get(f"/v1/customers/{bench.rng.choice(_customer_ids)}/state")


SCENARIOS.append(
    Scenario(
        "state",
        "GET /v1/customers/{id}/state (1 subscription, 3 grants)",
        _state,
        target_p99_ms=20,
        prepare=state_seed,
    )
)
