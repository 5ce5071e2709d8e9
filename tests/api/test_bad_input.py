"""Hand-made probes of every outside input that once answered 500: each is now a clear 4xx
(one error body, field-level where a field is at fault) and changes nothing."""

import json

import pytest

from accounts import services as account_services
from accounts.models import Customer
from billing.orders.models import Order
from billing.orders.services import Line, order_create
from billing.payments.models import Payment

pytestmark = pytest.mark.django_db

ERROR_KEYS = {"type", "code", "detail", "errors"}


def error_of(response, status: int) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == ERROR_KEYS
    return body


# --- external-id upsert ----------------------------------------------------------------------


def test_upsert_body_repeating_the_path_external_id_is_accepted(api, org):
    response = api.put(
        "/v1/customers/external/crm-1", {"external_id": "crm-1", "email": "a@example.com"}, format="json"
    )
    assert response.status_code == 201, response.json()
    assert Customer.objects.get().external_id == "crm-1"
    again = api.put("/v1/customers/external/crm-1", {"external_id": "crm-1", "name": "Ann"}, format="json")
    assert (again.status_code, again.json()["name"]) == (200, "Ann")


@pytest.mark.parametrize("body_id", ["crm-2", "", None, 5, ["crm-1"]])
def test_upsert_body_naming_another_external_id_is_a_field_error(api, org, body_id):
    account_services.customer_create(organization=org, email="a@example.com", external_id="crm-1")
    response = api.put(
        "/v1/customers/external/crm-1", {"external_id": body_id, "name": "Changed"}, format="json"
    )
    body = error_of(response, 400)
    assert [e["field"] for e in body["errors"]] == ["external_id"]
    customer = Customer.objects.get()
    assert (customer.external_id, customer.name) == ("crm-1", "")


# --- payment retry when the processor lost the customer ----------------------------------------


@pytest.mark.localstripe
@pytest.mark.django_db(transaction=True)  # the processor is called after commit, outside transactions
def test_retry_for_a_customer_the_processor_does_not_have_is_a_failed_attempt(api, org, stripe_client):
    card = stripe_client.PaymentMethod.create(
        type="card", card={"number": "4242424242424242", "exp_month": 12, "exp_year": 2035, "cvc": "123"}
    ).id
    customer = account_services.customer_create(organization=org, email="gone@example.com")
    Customer.objects.filter(pk=customer.pk).update(
        stripe_customer_id="cus_deleted_at_stripe", default_payment_method_id=card
    )
    order = order_create(
        organization=org,
        customer=customer,
        billing_reason="purchase",
        currency="usd",
        lines=[Line(label="Retry me", amount=2500)],
    )

    response = api.post(f"/v1/orders/{order.pk}/retry_payment")

    assert response.status_code == 200, response.content
    data = response.json()
    assert data["status"] == "pending"
    attempt = data["latest_payment"]
    assert attempt["status"] == "failed"
    # Stripe says resource_missing; localstripe only invalid_request_error. Either way the message tells.
    assert attempt["decline_code"] in ("resource_missing", "invalid_request_error")
    assert attempt["decline_message"].startswith("Stripe: ")
    order.refresh_from_db()
    assert order.status == Order.Status.PENDING
    assert Payment.objects.get(reference=order.reference).status == Payment.Status.FAILED


# --- bodies: size and depth, on token and on public endpoints ------------------------------------


def nested(depth: int) -> str:
    return '{"email": "a@example.com", "metadata": ' + '{"k": ' * depth + "1" + "}" * depth + "}"


@pytest.fixture
def open_checkout(org):
    from billing.catalog import services as catalog_services
    from billing.checkout import services as checkout_services

    product = catalog_services.product_create(
        organization=org, name="Ebook", prices=[{"currency": "usd", "type": "fixed", "amount": 1900}]
    )
    return checkout_services.checkout_create(organization=org, product_id=product.pk)


@pytest.mark.parametrize("depth", [40, 5_000, 200_000])
def test_deeply_nested_json_is_a_400(api, depth):
    response = api.post("/v1/customers", nested(depth), content_type="application/json")
    assert error_of(response, 400)["code"] == "too_deeply_nested"
    assert not Customer.objects.exists()


@pytest.mark.parametrize("depth", [40, 200_000])
def test_deeply_nested_json_on_the_public_checkout_is_a_400(client, open_checkout, depth):
    secret = open_checkout.client_secret
    for method, path in (("patch", ""), ("post", "/confirm")):
        response = getattr(client, method)(
            f"/v1/checkouts/client/{secret}{path}", nested(depth), content_type="application/json"
        )
        assert error_of(response, 400)["code"] == "too_deeply_nested"
    open_checkout.refresh_from_db()
    assert open_checkout.status == "open"


def test_json_nested_within_the_limit_still_reaches_validation(api):
    response = api.post("/v1/customers", nested(20), content_type="application/json")
    assert error_of(response, 400)["errors"][0]["field"].startswith("metadata")


def test_nul_in_a_json_string_is_a_400(api):
    response = api.post(
        "/v1/customers", '{"email": "a@example.com", "name": "a\\u0000b"}', content_type="application/json"
    )
    assert error_of(response, 400)["code"] == "nul_character"
    assert not Customer.objects.exists()


def test_body_over_the_upload_limit_is_a_413(api, client, open_checkout, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2_000
    body = json.dumps({"email": "a@example.com", "name": "x" * 5_000})
    assert error_of(api.post("/v1/customers", body, content_type="application/json"), 413)["code"] == (
        "request_too_large"
    )
    public = client.patch(
        f"/v1/checkouts/client/{open_checkout.client_secret}", body, content_type="application/json"
    )
    assert error_of(public, 413)["code"] == "request_too_large"
    assert not Customer.objects.exists()


def test_413_is_documented_on_writes():
    from rest_framework.test import APIClient

    paths = APIClient().get("/v1/openapi.json").json()["paths"]
    assert "413" in paths["/v1/customers"]["post"]["responses"]
    assert "413" in paths["/v1/checkouts/client/{client_secret}"]["patch"]["responses"]


# --- routes and methods --------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["get", "post", "put", "patch", "delete"])
def test_unknown_v1_path_is_the_json_404_for_every_method(api, method):
    assert error_of(getattr(api, method)("/v1/no-such-thing"), 404)["code"] == "not_found"
    assert error_of(getattr(api, method)("/v1/customers/x/y/z"), 404)["code"] == "not_found"


def test_unknown_v1_path_is_json_even_with_a_csrf_cookie_client(client):
    client = type(client)(enforce_csrf_checks=True)
    assert error_of(client.post("/v1/no-such-thing", {}), 404)["code"] == "not_found"


@pytest.mark.parametrize("method", ["put", "patch", "delete", "get"])
def test_post_only_action_routes_answer_other_methods_405(api, org, method):
    customer = account_services.customer_create(organization=org, email="a@example.com")
    for path in (
        f"/v1/customers/{customer.pk}/wallet/adjustments",
        "/v1/refunds/preview",
        f"/v1/orders/{customer.pk}/retry_payment",
        f"/v1/subscriptions/{customer.pk}/cancel",
        f"/v1/products/{customer.pk}/archive",
    ):
        response = getattr(api, method)(path, {"amount": 1}, format="json")
        assert error_of(response, 405)["code"] == "method_not_allowed", path
        assert "POST" in response["Allow"]
        if method != "get":  # a body that does not parse, with a key: still the method's fault
            response = getattr(api, method)(
                path, "{", content_type="application/json", HTTP_IDEMPOTENCY_KEY="k" * 300
            )
            assert error_of(response, 405)["code"] == "method_not_allowed", path


# --- pagination and filters ----------------------------------------------------------------------


@pytest.mark.parametrize("cursor", ["garbage", "%%%", "é", "cD1ub3QtYS1kYXRl", "bz0tMQ==", "cj14"])
def test_invalid_cursor_is_a_documented_400(api, org, cursor):
    body = error_of(api.get("/v1/customers", {"cursor": cursor}), 400)
    assert body["errors"][0]["field"] == "cursor"
    assert body["errors"][0]["code"] == "invalid_cursor"


def test_cursors_that_we_gave_out_still_work(api, org):
    for n in range(3):
        account_services.customer_create(organization=org, email=f"c{n}@example.com")
    first = api.get("/v1/customers", {"limit": 2}).json()
    second = api.get(first["next"]).json()
    assert len(first["results"]) == 2 and len(second["results"]) == 1
    back = api.get(second["previous"]).json()
    assert back["results"] == first["results"]


@pytest.mark.parametrize("limit", ["0", "-1", "101", "abc", "null", "1.5", "٣"])
def test_limit_outside_1_to_100_is_a_400(api, limit):
    body = error_of(api.get("/v1/customers", {"limit": limit}), 400)
    assert body["errors"][0]["field"] == "limit"


@pytest.mark.parametrize(
    "value",
    ["2026-01-01T00:00:00+25:00", "0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", "2026-13-01"],
)
@pytest.mark.parametrize(
    "path", ["/v1/customers", "/v1/orders", "/v1/refunds", "/v1/disputes", "/v1/ledger/transactions"]
)
def test_datetime_filters_out_of_range_are_a_400(api, path, value):
    body = error_of(api.get(path, {"created_after": value}), 400)
    assert body["errors"][0]["field"] == "created_after"


def test_datetime_filter_with_a_large_offset_is_converted_not_refused(api, org):
    account_services.customer_create(organization=org, email="a@example.com")
    for value in ("2000-01-01T00:00:00-15:30", "0580-07-08T10:28:37-20:27"):
        response = api.get("/v1/customers", {"created_after": value})
        assert response.status_code == 200 and len(response.json()["results"]) == 1


def test_a_filter_naming_another_organizations_object_answers_like_a_random_id(api, make_org, org):
    import uuid

    other = make_org("Other")
    theirs = account_services.customer_create(organization=other, email="them@example.com")
    foreign = api.get("/v1/checkouts", {"customer": str(theirs.pk)})
    random = api.get("/v1/checkouts", {"customer": str(uuid.uuid4())})
    assert foreign.status_code == random.status_code
    assert foreign.json() == random.json()


# --- amounts: one bound, the ledger's ----------------------------------------------------------

HUGE = [10**12, 2**62, 2**63, 2**64, -(2**63) - 1]


@pytest.mark.parametrize("amount", HUGE)
def test_wallet_adjustment_beyond_the_ledger_bound_is_a_field_error(api, org, amount):
    from billing.ledger.models import LedgerTransaction

    customer = account_services.customer_create(organization=org, email="a@example.com")
    response = api.post(
        f"/v1/customers/{customer.pk}/wallet/adjustments",
        {"amount": amount, "currency": "usd", "reason": "goodwill"},
        format="json",
    )
    assert error_of(response, 400)["errors"][0]["field"] == "amount"
    assert not LedgerTransaction.objects.exists()


def test_the_largest_wallet_adjustment_the_ledger_holds_is_accepted(api, org):
    from billing.money import LEDGER_AMOUNT_MAX

    customer = account_services.customer_create(organization=org, email="a@example.com")
    response = api.post(
        f"/v1/customers/{customer.pk}/wallet/adjustments",
        {"amount": LEDGER_AMOUNT_MAX, "currency": "usd", "reason": "goodwill"},
        format="json",
    )
    assert response.status_code == 201, response.json()


@pytest.mark.parametrize("amount", [10**12, 2**63])
def test_balance_adjustment_beyond_the_bound_is_refused_by_the_service(org, operator, amount):
    from billing.ledger.adjustments import balance_adjust
    from billing.ledger.models import LedgerTransaction
    from core.errors import InvalidInput

    for signed in (amount, -amount):
        with pytest.raises(InvalidInput) as refused:
            balance_adjust(organization=org, amount=signed, currency="usd", reason="fix", actor=operator)
        assert refused.value.field == "amount"
    assert not LedgerTransaction.objects.exists()


@pytest.mark.parametrize("amount", [10**12, 2**63])
def test_every_amount_field_of_the_api_is_bounded(api, org, amount):
    from billing.catalog.models import Product

    checks = [
        ("/v1/products", {"name": "P", "prices": [{"currency": "usd", "type": "fixed", "amount": amount}]}),
        ("/v1/discounts", {"name": "D", "type": "fixed", "amounts": {"usd": amount}}),
        ("/v1/refunds", {"order_id": "6a655fec-8dea-453d-a4f9-0f9a6eb97e86", "amount": amount}),
        ("/v1/refunds/preview", {"order_id": "6a655fec-8dea-453d-a4f9-0f9a6eb97e86", "amount": amount}),
        ("/v1/checkouts", {"product_id": "6a655fec-8dea-453d-a4f9-0f9a6eb97e86", "amount": amount}),
    ]
    for path, body in checks:
        response = api.post(path, body, format="json")
        fields = [e["field"] or "" for e in error_of(response, 400)["errors"]]
        assert any("amount" in f for f in fields), (path, fields)
    assert not Product.objects.exists()


@pytest.mark.parametrize("path", ["/v1/customers", "/v1/orders", "/v1/products", "/v1/checkouts"])
@pytest.mark.parametrize("query", ["nonsense=1", "=false", "created_afterr=2026-01-01T00:00:00Z"])
def test_unknown_list_parameters_are_a_400_naming_them(api, path, query):
    body = error_of(api.get(f"{path}?{query}"), 400)
    assert body["errors"][0]["field"] in (query.split("=")[0], "(empty name)")


@pytest.mark.parametrize("query", ["created_after=", "status=", "limit="])
def test_a_filter_without_a_value_is_a_400(api, query):
    path = "/v1/orders" if query.startswith("status") else "/v1/customers"
    body = error_of(api.get(f"{path}?{query}"), 400)
    assert body["errors"][0]["field"] == query.rstrip("=")
