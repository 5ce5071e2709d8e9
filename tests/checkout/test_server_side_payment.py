"""The calls docs/api.md gives an integrator to pay a checkout server-side in test mode
("Paying a checkout from your server in test mode"), made exactly as written."""

import pytest
from rest_framework.test import APIClient

from billing.orders.models import Order
from billing.payments.models import Payment

pytestmark = [pytest.mark.localstripe, pytest.mark.django_db(transaction=True)]


def test_the_documented_server_side_payment_works(org, ebook, stripe_client, api):
    created = api.post(
        "/v1/checkouts",
        {"product_id": str(ebook.pk), "customer_email": "ada@example.com"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="order-1001",
    )
    assert created.status_code == 201, created.json()
    checkout = created.json()
    assert (checkout["status"], checkout["amount_due"], checkout["order_id"]) == ("open", 2000, None)
    confirm_url = f"/v1/checkouts/client/{checkout['client_secret']}/confirm"
    public = APIClient()  # the client secret authorises; no token is sent

    declined = public.post(confirm_url, {"payment_method_id": "pm_card_visa_chargeDeclined"}, format="json")
    assert declined.status_code == 200, declined.json()
    assert declined.json()["status"] == "open"
    assert declined.json()["payment_error"] == "Your card was declined."
    assert declined.json()["order_id"] is None

    fails = public.post(confirm_url, {"payment_method_id": "pm_card_chargeCustomerFail"}, format="json")
    assert fails.status_code == 200, fails.json()
    assert fails.json()["status"] == "open" and fails.json()["payment_error"]

    paid = public.post(confirm_url, {"payment_method_id": "pm_card_visa"}, format="json")
    assert paid.status_code == 200, paid.json()
    body = paid.json()
    assert (body["status"], body["payment_error"]) == ("succeeded", "")
    order = api.get(f"/v1/orders/{body['order_id']}").json()
    assert (order["status"], order["total"], order["invoice_number"]) == (
        "paid",
        2000,
        f"{org.invoice_prefix}-00001",
    )
    invoice = api.get(f"/v1/orders/{body['order_id']}/invoice", HTTP_ACCEPT="application/pdf")
    assert invoice.content.startswith(b"%PDF-")

    again = public.post(confirm_url, {"payment_method_id": "pm_card_visa"}, format="json")
    assert again.status_code == 409
    assert Order.objects.count() == 1
    # localstripe refuses the declining card when it is attached, so no attempt is recorded
    # for it; Stripe refuses it at the charge (a failed attempt). The answer is the same.
    assert list(Payment.objects.filter(status="succeeded").values_list("amount", flat=True)) == [2000]
