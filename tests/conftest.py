import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from accounts import services as account_services
from accounts.models import User
from core.api.scopes import ALL_SCOPES
from tests.redis_urls import TEST_BROKER_URL, TEST_CACHE_URL

# Fixtures shared by the subscription tests of several folders (manual_org, plans).
pytest_plugins = ["tests.subscriptions.scenario", "tests.plans"]  # tests.plans: the crowd fixture


@pytest.fixture(autouse=True)
def _isolated_cache(settings):
    """Tests use their own Redis database and start with it empty."""
    settings.CACHES = {
        "default": {
            "BACKEND": "core.cache.RedisCache",
            "LOCATION": TEST_CACHE_URL,
            "KEY_PREFIX": "recur-test",
        }
    }
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path_factory):
    """Uploaded files go to a temporary folder, never the project's."""
    settings.MEDIA_ROOT = str(tmp_path_factory.mktemp("media"))


@pytest.fixture
def make_org(db):
    counter = iter(range(1, 10_000))

    def make(name: str | None = None, **settings):
        n = next(counter)
        owner = User.objects.create_user(
            f"owner{n}-{name or 'org'}@example.com".lower().replace(" ", ""), "pw"
        )
        return account_services.organization_create(name=name or f"Org {n}", owner=owner, **settings)

    return make


@pytest.fixture
def org(make_org):
    return make_org("Acme")


@pytest.fixture
def make_token():
    def make(organization, scopes=ALL_SCOPES, **kwargs):
        return account_services.access_token_create(
            organization=organization, name="test", scopes=scopes, **kwargs
        )

    return make


@pytest.fixture
def make_api():
    """An API client authenticated with a new token of ``organization``."""

    def make(organization, scopes=ALL_SCOPES):
        _, secret = account_services.access_token_create(
            organization=organization, name="test", scopes=scopes
        )
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
        return client

    return make


@pytest.fixture
def api(org, make_api):
    return make_api(org)


@pytest.fixture
def operator(db):
    """A platform superuser who logs into the backoffice."""
    return User.objects.create_superuser("operator@recur.test", "operator-pass")


@pytest.fixture
def backoffice(client, operator):
    client.force_login(operator)
    return client


@pytest.fixture(autouse=True)
def _celery_in_process():
    """Tasks enqueued after commit run in-process, on a broker database of their own.
    (tests/test_jobs.py runs a real worker and beat.)"""
    from config.celery import app

    saved = (app.conf.task_always_eager, app.conf.broker_url)
    app.conf.task_always_eager = True
    app.conf.broker_url = TEST_BROKER_URL
    yield
    app.conf.task_always_eager, app.conf.broker_url = saved


@pytest.fixture
def webhook_endpoint(db):
    from billing.payments.endpoints import webhook_endpoint_ensure

    return webhook_endpoint_ensure(base_url="http://testserver")


@pytest.fixture
def customer(org):
    return account_services.customer_create(organization=org, email="buyer@example.com", name="Buyer")


@pytest.fixture
def make_payment(org, customer):
    from billing.payments import services as payment_services

    def make(reference: str = "order:demo", amount: int = 2000, currency: str = "usd", **kwargs):
        payment = payment_services.payment_create(
            organization=org,
            customer=customer,
            reference=reference,
            amount=amount,
            currency=currency,
            trigger=kwargs.pop("trigger", "purchase"),
            **kwargs,
        )
        return payment

    return make


@pytest.fixture
def make_product(org):
    from billing.catalog import services as catalog_services

    def make(name="Pro plan", *, recurring=None, prices=None, **kwargs):
        interval, count = (recurring or (None, 1)) if isinstance(recurring, tuple) else (recurring, 1)
        return catalog_services.product_create(
            organization=kwargs.pop("organization", org),
            name=name,
            recurring_interval=interval,
            recurring_interval_count=count,
            prices=prices or [{"currency": "usd", "type": "fixed", "amount": 2000}],
            **kwargs,
        )

    return make
