"""A purchase and its refund, end to end against localstripe: every checkout.*, customer.*,
product.* and refund.* event carries the object exactly as the API's GET shows it right after
the change committed (a consumer GETs it when the event is handled, after commit)."""

import pytest
from rest_framework.test import APIClient

from billing.orders.models import Order
from core.events import registry
from core.events.models import Event
from tests.checkout.test_checkout_flow import SUCCEEDS, card

pytestmark = pytest.mark.localstripe

API_PATHS = {
    "checkout": "/v1/checkouts/{}",
    "customer": "/v1/customers/{}",
    "product": "/v1/products/{}",
    "refund": "/v1/refunds/{}",
}


@pytest.fixture
def gets_at_handling(monkeypatch, org, make_api):
    """A consumer that GETs each event's object through the API when the event is handled."""
    api = make_api(org)
    seen: list[tuple[str, dict, dict]] = []

    def handle(event):
        path = API_PATHS.get(event.object_type)
        if path is not None:
            response = api.get(path.format(event.object_id))
            assert response.status_code == 200, response.content
            seen.append((event.type, event.data, response.json()))

    monkeypatch.setitem(
        registry.REGISTRY.consumers,
        "test-api-get",
        registry.Consumer(name="test-api-get", types=frozenset([registry.ANY]), handle=handle),
    )
    return seen


@pytest.mark.django_db(transaction=True)
def test_purchase_and_refund_events_carry_the_api_representation(
    org, make_api, stripe_client, gets_at_handling
):
    api = make_api(org)
    product = api.post(
        "/v1/products",
        {"name": "E-book", "prices": [{"currency": "usd", "type": "fixed", "amount": 2000}]},
        format="json",
    ).json()
    checkout = api.post(
        "/v1/checkouts", {"product_id": product["id"], "customer_email": "buyer@example.com"}, format="json"
    ).json()
    confirmed = APIClient().post(
        f"/v1/checkouts/client/{checkout['client_secret']}/confirm",
        {"payment_method_id": card(stripe_client, SUCCEEDS), "customer_name": "Buyer"},
        format="json",
    )
    assert confirmed.json()["status"] == "succeeded", confirmed.json()
    order = Order.objects.get()
    refund = api.post(
        "/v1/refunds", {"order_id": str(order.pk), "reason": "requested_by_customer"}, format="json"
    )
    assert refund.status_code == 201, refund.json()

    types = [t for t, _, _ in gets_at_handling]
    assert types == [
        "product.created",
        "checkout.created",
        "customer.created",
        "checkout.updated",  # confirmed (customer name filled in)
        "checkout.updated",  # succeeded
        "refund.created",  # pending: the card part goes to the processor next
        "refund.updated",  # succeeded
    ]
    for event_type, data, at_handling in gets_at_handling:
        assert data == at_handling, event_type
    statuses = [data["status"] for t, data, _ in gets_at_handling if t.startswith(("checkout", "refund"))]
    assert statuses == ["open", "confirmed", "succeeded", "pending", "succeeded"]
    assert gets_at_handling[4][1]["order_id"] == str(order.pk)

    # The events API returns the same payloads, newest first, with the envelope of webhooks.
    # (Order events, recorded too, are another test's: only these kinds are compared here.)
    listed = [e for e in api.get("/v1/events").json()["results"] if e["type"].split(".")[0] in API_PATHS]
    assert [e["type"] for e in listed] == list(reversed(types))
    assert listed[0]["data"] == api.get(f"/v1/refunds/{refund.json()['id']}").json()
    assert Event.objects.filter(organization=org, object_type__in=API_PATHS).count() == len(types)
