"""Every operation of the OpenAPI document, fuzzed in-process: no 5xx, no schema violation.

The document is read from the app itself (WSGI), so what is served is what is tested.
An organization seeded with one of everything gives the generated requests real objects
to hit: path ids are drawn from its rows as well as generated. Each operation gets a
bounded number of valid and of invalid requests, derandomized so a run is reproducible
(``RECUR_FUZZ_SEED=<n>`` explores other examples, ``RECUR_FUZZ_EXAMPLES`` sets the bound),
and every schemathesis check runs on every answer. A stateful phase follows the links
the document infers between operations.
"""

import os

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from tests.tenancy import seed_everything

pytestmark = pytest.mark.django_db

MAX_EXAMPLES = int(os.environ.get("RECUR_FUZZ_EXAMPLES", "25"))
SEED = os.environ.get("RECUR_FUZZ_SEED")
HYPOTHESIS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=SEED is None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
    print_blob=False,
)


@pytest.fixture
def fuzz_token(org, make_token, settings):
    settings.RECUR_API_RATE_LIMIT = 1_000_000
    settings.RECUR_TOKEN_GUESS_LIMIT = 1_000_000  # the auth checks send wrong tokens on purpose
    seed_everything(org)
    _, secret = make_token(org)
    return secret


@pytest.fixture
def wsgi_app():
    # Like Django's test client: the test's transaction must survive each request.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield get_wsgi_application()
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def seeded_path_values(organization) -> dict[str, list[str]]:
    """Real identifiers of the seeded organization, by the path segment they follow."""
    from accounts.models import Customer
    from benefits.downloadables.models import File
    from benefits.models import Benefit, BenefitGrant
    from billing.catalog.models import Discount, Product
    from billing.checkout.models import Checkout
    from billing.disputes.models import Dispute
    from billing.ledger.models import LedgerTransaction
    from billing.orders.models import Order
    from billing.refunds.models import Refund
    from billing.subscriptions.models import Subscription

    def ids(model, field="pk"):
        return [
            str(v) for v in model.objects.filter(organization=organization).values_list(field, flat=True)[:5]
        ]

    return {
        "/v1/customers/{id}": ids(Customer),
        "/v1/customers/external/{external_id}": ids(Customer, "external_id") or ["none"],
        "/v1/products/{id}": ids(Product),
        "/v1/discounts/{id}": ids(Discount),
        "/v1/checkouts/{id}": ids(Checkout),
        "/v1/checkouts/client/{client_secret}": ids(Checkout, "client_secret"),
        "/v1/orders/{id}": ids(Order),
        "/v1/subscriptions/{id}": ids(Subscription),
        "/v1/refunds/{id}": ids(Refund),
        "/v1/disputes/{id}": ids(Dispute),
        "/v1/ledger/transactions/{id}": ids(LedgerTransaction),
        "/v1/benefits/{id}": ids(Benefit),
        "/v1/benefit-grants/{id}": ids(BenefitGrant),
        "/v1/files/{id}": ids(File),
    }


def path_parameters_for(path: str, seeded: dict[str, list[str]]) -> list[dict[str, str]]:
    for prefix, values in seeded.items():
        if path.startswith(prefix):
            name = prefix.rsplit("{", 1)[1].rstrip("}")
            return [{name: value} for value in values if value]
    return []


def strategy_for(operation, mode: GenerationMode, seeded):
    generated = operation.as_strategy(generation_mode=mode)
    real = [
        operation.as_strategy(generation_mode=mode, path_parameters=params)
        for params in path_parameters_for(operation.path, seeded)
    ]
    return st.one_of(generated, *real) if real else generated


def excluded_checks():
    # Every check runs but one: a schema-valid request may still break a business rule
    # (an id that is not yours, a currency the product is not sold in, an order already
    # refunded) and then rightly answers 4xx. 5xx and schema violations always fail.
    return [schemathesis.checks.positive_data_acceptance]


def call_headers(case, mode: GenerationMode, token_headers: dict) -> dict:
    """The seeded token, unless a negative case is testing a malformed Authorization itself."""
    if not mode.is_positive and case.headers and "Authorization" in case.headers:
        return {}
    return token_headers


def run_operation(operation, mode, seeded, headers) -> str | None:
    @HYPOTHESIS
    @given(case=strategy_for(operation, mode, seeded))
    def exercise(case):
        # A savepoint per request, as autocommit gives each request in production: one
        # failure must not abort the test's transaction and hide the next ones.
        with transaction.atomic():
            case.call_and_validate(
                headers=call_headers(case, mode, headers), excluded_checks=excluded_checks()
            )

    if SEED is not None:
        exercise = seed(int(SEED))(exercise)
    try:
        exercise()
    except (Exception, BaseExceptionGroup) as exc:
        return f"{operation.label} ({mode.value}): {exc}"
    return None


def test_every_operation_answers_without_5xx_and_to_its_schema(wsgi_app, fuzz_token, org):
    schema = schemathesis.openapi.from_wsgi("/v1/openapi.json", wsgi_app)
    headers = {"Authorization": f"Bearer {fuzz_token}"}
    seeded = seeded_path_values(org)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 50
    failures = [
        failure
        for operation in operations
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        if (failure := run_operation(operation, mode, seeded, headers))
    ]
    assert not failures, "\n\n".join(failures)


def test_stateful_sequences_follow_the_links_without_5xx(wsgi_app, fuzz_token):
    """Chains of calls (create, then read, change, act on what was created), as the document's
    links and schemathesis's inferred ones allow; every response is checked as above."""
    schema = schemathesis.openapi.from_wsgi("/v1/openapi.json", wsgi_app)
    headers = {"Authorization": f"Bearer {fuzz_token}"}

    class Sequences(schema.as_state_machine()):
        def get_call_kwargs(self, case):
            return {"headers": headers}

        def call(self, case, **kwargs):
            with transaction.atomic():
                return case.call(**kwargs)

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(
                response,
                additional_checks=additional_checks,
                excluded_checks=excluded_checks(),
                headers=headers,
                transport_kwargs=kwargs,
            )

    Sequences.run(
        settings=settings(HYPOTHESIS, max_examples=max(5, MAX_EXAMPLES // 2), stateful_step_count=6)
    )
