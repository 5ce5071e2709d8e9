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
