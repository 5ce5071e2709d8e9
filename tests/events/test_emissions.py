"""Customers, the catalog, checkouts and disputes record their events with the change, and
"updated" only when something an integrator sees changed."""

from datetime import timedelta

import pytest
import time_machine

from accounts import services as account_services
from billing.checkout import services as checkout_services
from billing.disputes.models import Dispute
from core import clock
from core.errors import Conflict
from core.events.models import Event
from tests.disputes import events as stripe_disputes
from tests.disputes.conftest import pay_order

pytestmark = pytest.mark.django_db


def recorded(**filters) -> list[Event]:
    return list(Event.objects.filter(**filters).order_by("id"))


def types(**filters) -> list[str]:
    return [e.type for e in recorded(**filters)]


def test_customer_events_follow_what_the_api_shows(org, api, assert_matches_schema):
    created = api.post("/v1/customers", {"email": "Ada@Example.com", "name": "Ada"}, format="json").json()
    (event,) = recorded(object_id=created["id"])
    assert (event.type, event.data) == ("customer.created", created)

    customer = account_services.customer_update(
        customer=account_services.Customer.objects.get(pk=created["id"]), name="Ada"
    )
    assert types(object_id=created["id"]) == ["customer.created"]  # nothing changed

    updated = api.patch(f"/v1/customers/{customer.pk}", {"name": "Ada Lovelace"}, format="json").json()
    last = recorded(object_id=created["id"])[-1]
    assert (last.type, last.data) == ("customer.updated", updated)

    assert api.delete(f"/v1/customers/{customer.pk}").status_code == 204
    deleted = recorded(object_id=created["id"])[-1]
    assert (deleted.type, deleted.data["name"]) == ("customer.deleted", "Ada Lovelace")
    assert deleted.organization_id == org.pk
    assert_matches_schema(recorded(object_type="customer"))


def test_a_refused_delete_records_nothing(org, customer):
    pay_order(org, customer)  # an order keeps its customer
    before = Event.objects.count()
    with pytest.raises(Conflict):
        account_services.customer_delete(customer=customer)
    assert Event.objects.count() == before and not Event.objects.filter(type="customer.deleted").exists()


def test_product_and_discount_events(org, api, assert_matches_schema):
    product = api.post(
        "/v1/products",
        {"name": "Pro", "prices": [{"currency": "usd", "type": "fixed", "amount": 2000}]},
        format="json",
    ).json()
    path = f"/v1/products/{product['id']}"
    api.patch(path, {"name": "Pro"}, format="json")  # no change
    changed = api.patch(
        path, {"prices": [{"currency": "usd", "type": "fixed", "amount": 2500}]}, format="json"
    )
    archived = api.post(f"{path}/archive").json()
    api.post(f"{path}/archive")  # already archived: nothing happens
    events = recorded(object_id=product["id"])
    assert [e.type for e in events] == ["product.created", "product.updated", "product.updated"]
    assert [e.data for e in events] == [product, changed.json(), archived]
    assert events[1].data["prices"][0]["amount"] == 2500

    discount = api.post(
        "/v1/discounts", {"name": "Launch", "code": "LAUNCH", "type": "percentage", "basis_points": 1000},
        format="json",
    ).json()  # fmt: skip
    path = f"/v1/discounts/{discount['id']}"
    api.patch(path, {"name": "Launch"}, format="json")  # no change
    renamed = api.patch(path, {"name": "Launch week", "product_ids": [product["id"]]}, format="json").json()
    archived = api.post(f"{path}/archive").json()
    events = recorded(object_id=discount["id"])
    assert [e.type for e in events] == ["discount.created", "discount.updated", "discount.updated"]
    assert [e.data for e in events] == [discount, renamed, archived]
    assert_matches_schema(recorded(object_type__in=["product", "discount"]))


def test_checkout_expiry_is_recorded_once(org, make_product, assert_matches_schema):
    product = make_product("E-book")
    checkout = checkout_services.checkout_create(
        organization=org, product_id=product.pk, customer_email="late@example.com"
    )
    checkout_services.checkout_update(checkout=checkout, customer_name="Late")
    checkout_services.checkout_update(checkout=checkout, customer_name="Late")  # no change
    with time_machine.travel(clock.now() + timedelta(days=2)):
        checkout_services.checkouts_expire()
        checkout_services.checkouts_expire()
    events = recorded(object_id=str(checkout.pk))
    assert [e.type for e in events] == ["checkout.created", "checkout.updated", "checkout.expired"]
    assert events[1].data["customer_name"] == "Late" and events[2].data["status"] == "expired"
    assert_matches_schema(events)


@pytest.mark.django_db(transaction=True)
def test_dispute_events_through_the_stripe_receivers(org, client, webhook_endpoint, assert_matches_schema):
    customer = account_services.customer_create(organization=org, email="buyer@example.com")
    _order, payment = pay_order(org, customer)
    lifecycle = stripe_disputes.lifecycle(payment, outcome="won")
    stripe_disputes.deliver(client, webhook_endpoint, *lifecycle)
    stripe_disputes.deliver(client, webhook_endpoint, *lifecycle)  # redelivered: nothing new
    dispute = Dispute.objects.get()
    events = recorded(object_type="dispute")
    # created, funds withdrawn (updated), evidence under review (updated), won (closed, its
    # snapshot carries the reinstatement); funds_reinstated after it changes nothing more.
    assert [e.type for e in events] == [
        "dispute.created",
        "dispute.updated",
        "dispute.updated",
        "dispute.closed",
    ]
    assert [e.data["status"] for e in events] == ["needs_response", "needs_response", "under_review", "won"]
    assert events[1].data["funds_withdrawn_at"] is not None
    assert events[-1].data["funds_reinstated_at"] is not None
    assert {e.object_id for e in events} == {str(dispute.pk)}
    assert_matches_schema(events)
