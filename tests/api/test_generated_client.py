"""A client generated from /v1/openapi.json (openapi-python-client) works against a live server."""

import importlib
import subprocess
import sys
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from accounts import services as account_services
from accounts.models import Customer
from billing.orders.models import Order
from tests.tenancy import seed_purchases

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def generated_client(tmp_path, monkeypatch):
    schema = tmp_path / "openapi.json"
    schema.write_bytes(APIClient().get("/v1/openapi.json").content)
    generator = Path(sys.executable).with_name("openapi-python-client")
    result = subprocess.run(
        [
            str(generator),
            "generate",
            "--path",
            str(schema),
            "--meta",
            "none",
            "--output-path",
            "recur_client",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    monkeypatch.syspath_prepend(str(tmp_path))
    yield importlib.import_module("recur_client")
    for name in [m for m in sys.modules if m == "recur_client" or m.startswith("recur_client.")]:
        del sys.modules[name]


def test_generated_client_round_trip(generated_client, live_server, org, make_token):
    _, secret = make_token(org)
    client = generated_client.AuthenticatedClient(base_url=live_server.url, token=secret)

    def api(name: str):
        return importlib.import_module(f"recur_client.api.{name}")

    models = importlib.import_module("recur_client.models")

    created = api("customers.customers_create").sync(
        client=client, body=models.CustomerRequest(email="gen@example.com", name="Generated")
    )
    assert created.email == "gen@example.com"
    upserted = api("customers.customers_external_upsert").sync(
        client=client, external_id="crm-1", body=models.CustomerUpsertRequest(email="crm@example.com")
    )
    assert upserted.external_id == "crm-1"
    page = api("customers.customers_list").sync(client=client, limit=10)
    assert {c.email for c in page.results} == {"gen@example.com", "crm@example.com"}
    assert api("organization.organization_retrieve").sync(client=client).id == org.id

    refused = api("customers.customers_create").sync_detailed(
        client=client, body=models.CustomerRequest(email="nope")
    )
    assert refused.status_code == 400
    assert Customer.objects.filter(organization=org).count() == 2


def test_generated_client_pages_with_next_cursor_and_gets_the_invoice_bytes(
    generated_client, live_server, org, make_token
):
    for n in range(5):
        account_services.customer_create(organization=org, email=f"page{n}@example.com")
    seed_purchases(org)
    _, secret = make_token(org)
    client = generated_client.AuthenticatedClient(base_url=live_server.url, token=secret)
    customers_list = importlib.import_module("recur_client.api.customers.customers_list")
    invoice = importlib.import_module("recur_client.api.orders.orders_invoice_retrieve")
    File = importlib.import_module("recur_client.types").File

    emails, cursor, pages = [], None, 0
    while True:
        page = customers_list.sync(client=client, limit=2, **({"cursor": cursor} if cursor else {}))
        pages += 1
        emails += [c.email for c in page.results]
        if not (cursor := page.next_cursor):
            break
    total = Customer.objects.filter(organization=org).count()
    assert len(emails) == len(set(emails)) == total
    assert pages == (total + 1) // 2

    order = Order.objects.filter(organization=org).exclude(invoice_number=None).first()
    pdf = invoice.sync(id=order.pk, client=client)
    assert isinstance(pdf, File)
    assert pdf.payload.read().startswith(b"%PDF-")
