"""Every /v1/ read answers a bad or unknown query parameter with a 400 naming it.

Routes come from the URL resolver (as in the tenant isolation walk), and the bad value of
each filter from its form field, so lists and filters added later are covered untouched.
"""

import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
from django import forms
from django.urls import resolve
from django_filters.fields import IsoDateTimeField

from accounts import services as account_services
from accounts.models import Customer
from benefits.license_keys.models import LicenseKeyActivation
from billing.checkout.models import Checkout
from billing.orders.models import Order
from tests.api.test_tenant_isolation import api_routes
from tests.tenancy import seed_everything

pytestmark = pytest.mark.django_db

# Bad values every list refuses, whatever its filters.
PAGINATION_BAD = [
    ("limit", "abc"),
    ("limit", "0"),
    ("limit", "-1"),
    ("limit", "1.5"),
    ("limit", "100000"),
    ("limit", ""),
    ("cursor", "bad"),
    ("cursor", "!!!"),
    ("ordering", "created_at"),
    ("ordering", "-name"),
    ("format", "xml"),
    ("page", "2"),
    ("unknown", "1"),
]


def field_errors(response) -> dict[str, str]:
    return {error["field"]: error["code"] for error in response.json()["errors"]}


def bad_values_of(field: forms.Field) -> list[str]:
    """Values the form field of a filter refuses; none for free text without a bound."""
    if isinstance(field, forms.NullBooleanField | forms.BooleanField):
        return ["maybe", "yes please"]
    if isinstance(field, IsoDateTimeField | forms.DateTimeField):
        return ["yesterday", "2024-13-01T00:00:00Z", "10000-01-01T00:00:00Z"]
    if isinstance(field, forms.UUIDField):
        return ["not-a-uuid"]
    if isinstance(field, forms.ChoiceField):  # choices, model choices, multiple choices
        return ["bogus"]
    if isinstance(field, forms.CharField) and field.max_length:
        return ["x" * (field.max_length + 1)]
    return []


def get_routes() -> list[tuple[str, list[str], type, str]]:
    """(template, kwarg names, view class, action) of every GET route under /v1/."""
    routes = []
    for template, names in api_routes():
        sample = "/v1/" + template.format(**{n: "x" for n in names})
        func = resolve(sample).func
        view = getattr(func, "cls", None) or func.view_class
        actions = getattr(func, "actions", None)
        if actions is not None:
            if "get" in actions:
                routes.append((template, names, view, actions["get"]))
        elif hasattr(view, "get"):
            routes.append((template, names, view, "get"))
    return routes


def fill(template: str, names: list[str], view, org) -> str:
    """The route's URL with the kwargs of a real object of the organization."""
    values = {}
    for name in names:
        if name == "client_secret":
            values[name] = Checkout.objects.filter(organization=org).first().client_secret
        elif name == "activation_id":  # a license key's activation (the key is the view's row)
            values[name] = LicenseKeyActivation.objects.filter(organization=org).first().pk
        elif name == "external_id":
            values[name] = (
                Customer.objects.filter(organization=org).exclude(external_id=None).first().external_id
            )
        else:
            row = view.queryset.model.objects.filter(organization=org).first()
            values[name] = getattr(row, "public_id", None) or row.pk  # events answer to evt_...
    return "/v1/" + template.format(**values)


@pytest.fixture
def seeded(org):
    seed_everything(org)
    return org


def test_every_get_route_is_walked():
    routes = {(template, action) for template, _, _, action in get_routes()}
    assert ("customers", "list") in routes
    assert ("customers/{pk}/wallet/transactions", "wallet_transactions") in routes
    assert ("orders/{pk}/invoice", "invoice") in routes
    assert ("balance", "get") in routes
    assert len([r for r in routes if r[1] == "list"]) >= 9


def is_paginated(view, action: str) -> bool:
    """Lists, and the paginated actions a view names (a customer's wallet transactions)."""
    return action == "list" or action in getattr(view, "paginated_actions", ())


def test_every_list_refuses_bad_pagination_and_unknown_parameters(api, seeded):
    lists = [(t, n, v) for t, n, v, action in get_routes() if is_paginated(v, action)]
    for template, names, view in lists:
        url = fill(template, names, view, seeded)
        ok = api.get(url, {"limit": "1"})
        assert ok.status_code == 200, (url, ok.content[:300])
        assert {"next", "previous", "next_cursor", "previous_cursor", "results"} <= set(ok.json())
        for name, value in PAGINATION_BAD:
            response = api.get(url, {name: value})
            assert response.status_code == 400, (url, name, value, response.content[:300])
            assert name in field_errors(response), (url, name, value, response.json())


def test_every_list_filter_refuses_a_value_of_the_wrong_kind(api, seeded):
    checked = set()
    for template, names, view, action in get_routes():
        if action != "list" or getattr(view, "filterset_class", None) is None:
            continue
        url = fill(template, names, view, seeded)
        for name, field in view.filterset_class().form.fields.items():
            for value in bad_values_of(field):
                response = api.get(url, {name: value})
                assert response.status_code == 400, (url, name, value, response.content[:300])
                assert name in field_errors(response), (url, name, value, response.json())
                checked.add((template, name))
    kinds = {name for _, name in checked}
    # booleans, dates, ids, choices and bounded text are all among them
    assert {"is_archived", "created_after", "customer_id", "status", "query"} <= kinds


def test_reads_that_take_no_parameters_refuse_any(api, client, seeded):
    reads = [(t, n, v, a) for t, n, v, a in get_routes() if not is_paginated(v, a)]
    assert len(reads) >= 10
    for template, names, view, _action in reads:
        url = fill(template, names, view, seeded)
        caller = client if template.startswith("checkouts/client") else api
        assert caller.get(url).status_code == 200, url
        for name, value in [("expand", "customer"), ("limit", "5"), ("unknown", "")]:
            response = caller.get(url, {name: value})
            assert response.status_code == 400, (url, name, response.content[:300])
            assert name in field_errors(response), (url, name, response.json())


def test_pages_carry_their_cursors_as_fields(api, org):
    for n in range(5):
        account_services.customer_create(organization=org, email=f"c{n}@example.com")
    seen, cursor, pages = [], None, 0
    while True:
        page = api.get("/v1/customers", {"limit": 2, **({"cursor": cursor} if cursor else {})}).json()
        pages += 1
        seen += [c["email"] for c in page["results"]]
        if page["next"] is None:
            assert page["next_cursor"] is None
            break
        assert parse_qs(urlsplit(page["next"]).query)["cursor"] == [page["next_cursor"]]
        cursor = page["next_cursor"]
    assert pages == 3
    assert seen == [f"c{n}@example.com" for n in reversed(range(5))]
    back = api.get("/v1/customers", {"limit": 2, "cursor": page["previous_cursor"]}).json()
    assert [c["email"] for c in back["results"]] == seen[2:4]
    first = api.get("/v1/customers", {"limit": 2}).json()
    assert first["previous"] is None and first["previous_cursor"] is None


def test_the_schema_describes_the_cursor_fields_of_every_page(client):
    schema = client.get("/v1/openapi.json").json()
    pages = {name: s for name, s in schema["components"]["schemas"].items() if name.startswith("Paginated")}
    pages["WalletTransactionPage"] = schema["components"]["schemas"]["WalletTransactionPage"]
    assert len(pages) >= 9
    for name, page in pages.items():
        for field in ("next_cursor", "previous_cursor"):
            # OpenAPI 3.1 spells a nullable string as a list of types.
            assert page["properties"][field]["type"] == ["string", "null"], name
            assert field in page["required"], name
    wallet = schema["paths"]["/v1/customers/{id}/wallet/transactions"]["get"]
    assert {"cursor", "limit"} <= {p["name"] for p in wallet["parameters"]}


def test_the_invoice_is_described_and_served_as_a_pdf(api, org, client):
    seed_everything(org)
    schema = client.get("/v1/openapi.json").json()
    ok = schema["paths"]["/v1/orders/{id}/invoice"]["get"]["responses"]["200"]["content"]
    binary = {"schema": {"type": "string", "format": "binary"}}
    assert ok == {"application/pdf": binary, "application/octet-stream": binary}
    assert next(iter(ok)) == "application/pdf"
    order = Order.objects.filter(organization=org).exclude(invoice_number=None).first()
    for accept in ("application/pdf", "application/octet-stream", "*/*", "application/json"):
        response = api.get(f"/v1/orders/{order.pk}/invoice", HTTP_ACCEPT=accept)
        assert response.status_code == 200, accept
        assert response["Content-Type"] == "application/pdf"
        assert response.content.startswith(b"%PDF-")
    missing = api.get(f"/v1/orders/{uuid.uuid4()}/invoice", HTTP_ACCEPT="application/pdf")
    assert missing.status_code == 404
    assert missing.json()["type"] == "not_found_error"
