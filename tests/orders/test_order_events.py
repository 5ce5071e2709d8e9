"""Orders and subscriptions say what happened through domain events: each event is recorded
with its change, its payload is the API's GET of the object at that moment (the renewal's
bulk path included), a subscription follows its orders through those events, and an order
is paid once whatever path pays it."""

from datetime import timedelta

import pytest
import time_machine

from billing.ledger.models import LedgerTransaction
from billing.ledger.wallet import wallet_adjust
from billing.orders.models import Order
from billing.orders.services import order_mark_paid
from billing.payments.manual import ManualProcessor
from billing.payments.processor import ChargeOutcome
from billing.subscriptions import dunning, renewals, tasks
from billing.subscriptions.models import Subscription
from core.events.models import Event
from tests.subscriptions.scenario import subscribe

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def api_get(manual_org, make_api):
    client = make_api(manual_org)

    def get(kind: str, pk) -> dict:
        response = client.get(f"/v1/{kind}/{pk}")
        assert response.status_code == 200, response.content
        return response.json()

    return get


@pytest.fixture
def lost_messages(monkeypatch):
    """Collection messages go nowhere: the sweeps charge, so each step can be looked at."""
    monkeypatch.setattr(tasks.collect_order_payment, "delay", lambda *args, **kwargs: None)


def decline(monkeypatch, code="card_declined"):
    def declined(self, **kwargs):
        return ChargeOutcome(
            status="failed", payment_intent_id=f"pi_{kwargs['idempotency_key']}", decline_code=code
        )

    monkeypatch.setattr(ManualProcessor, "payment_intent_create", declined)


def events_of(obj, *, after: int = 0) -> list[Event]:
    return list(Event.objects.filter(object_id=str(obj.pk), pk__gt=after).order_by("pk"))


def last_event_id() -> int:
    return Event.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def test_a_subscriptions_life_in_events_with_payloads_equal_to_the_api(
    manual_org, plans, api_get, lost_messages, monkeypatch
):
    subscription = subscribe(manual_org, plans["basic"])
    (first_order,) = Order.objects.filter(subscription=subscription)
    assert [e.type for e in events_of(first_order)] == ["order.created", "order.paid"]
    assert events_of(first_order)[-1].data == api_get("orders", first_order.pk)
    assert [e.type for e in events_of(subscription)] == ["subscription.created", "subscription.active"]
    assert events_of(subscription)[-1].data == api_get("subscriptions", subscription.pk)

    # The renewal writes its events in the chunk's bulk path: payloads built from memory.
    when = subscription.current_period_end + timedelta(minutes=1)
    mark = last_event_id()
    with time_machine.travel(when, tick=False):
        assert renewals.renewals_run().cycled == 1
    renewal = Order.objects.get(subscription=subscription, billing_reason="subscription_cycle")
    (created,) = events_of(renewal, after=mark)
    assert created.type == "order.created" and created.data == api_get("orders", renewal.pk)
    assert created.data["items"] and created.data["status"] == "pending"
    (cycled,) = events_of(subscription, after=mark)
    assert cycled.type == "subscription.cycled" and cycled.data == api_get("subscriptions", subscription.pk)

    # A declined renewal: the order says so, the subscription follows (its own consumer).
    decline(monkeypatch)
    mark = last_event_id()
    with time_machine.travel(when, tick=False):
        assert dunning.order_collections_sweep() == 1
    assert [e.type for e in events_of(renewal, after=mark)] == ["order.updated"]
    (past_due,) = events_of(subscription, after=mark)
    assert past_due.type == "subscription.past_due"
    assert past_due.data == api_get("subscriptions", subscription.pk)
    assert past_due.data["status"] == "past_due" and past_due.data["past_due_at"] is not None

    # The dunning retry succeeds: paid once, active again.
    monkeypatch.undo()
    monkeypatch.setattr(tasks.collect_order_payment, "delay", lambda *args, **kwargs: None)
    renewal.refresh_from_db()
    mark = last_event_id()
    with time_machine.travel(renewal.next_payment_attempt_at + timedelta(minutes=1), tick=False):
        assert dunning.dunning_run() == 1
        assert dunning.dunning_run() == 0
    (paid,) = events_of(renewal, after=mark)
    assert paid.type == "order.paid" and paid.data == api_get("orders", renewal.pk)
    assert paid.data["invoice_number"] and paid.data["paid_at"]
    (active,) = events_of(subscription, after=mark)
    assert active.type == "subscription.active" and active.data["status"] == "active"
    assert active.data == api_get("subscriptions", subscription.pk)


def test_when_dunning_gives_up_the_subscription_is_canceled_through_the_event(
    manual_org, plans, api_get, lost_messages, monkeypatch
):
    subscription = subscribe(manual_org, plans["basic"])
    when = subscription.current_period_end + timedelta(minutes=1)
    decline(monkeypatch, code="stolen_card")  # hard: straight to the deadline
    with time_machine.travel(when, tick=False):
        renewals.renewals_run()
        dunning.order_collections_sweep()
    renewal = Order.objects.get(subscription=subscription, billing_reason="subscription_cycle")
    renewal.refresh_from_db()
    mark = last_event_id()
    with time_machine.travel(renewal.next_payment_attempt_at + timedelta(minutes=1), tick=False):
        assert dunning.dunning_run() == 1
    assert [e.type for e in events_of(renewal, after=mark)] == ["order.updated", "order.dunning_exhausted"]
    assert events_of(renewal, after=mark)[-1].data == api_get("orders", renewal.pk)
    assert events_of(renewal, after=mark)[-1].data["status"] == "void"
    (canceled,) = events_of(subscription, after=mark)
    assert canceled.type == "subscription.canceled" and canceled.data == api_get(
        "subscriptions", subscription.pk
    )
    assert canceled.data["status"] == "canceled" and canceled.data["benefits_revoke_at"] is not None
    subscription.refresh_from_db()
    assert subscription.cancellation_reason == "payment_failed"


def test_an_order_is_paid_once_whatever_path_pays_it(manual_org, plans, lost_messages):
    # The checkout path and the renewal paid from the wallet (no payment at all).
    subscription = subscribe(manual_org, plans["basic"])
    wallet_adjust(customer=subscription.customer, amount=10_000, currency="usd", reason="Credit")
    with time_machine.travel(subscription.current_period_end + timedelta(minutes=1), tick=False):
        renewals.renewals_run()
    orders = list(Order.objects.filter(subscription=subscription).order_by("created_at"))
    assert [o.status for o in orders] == ["paid", "paid"]
    for order in orders:
        # The manual path again (an operator, a duplicate report) changes nothing.
        assert order_mark_paid(order=order) is False
        assert Event.objects.filter(type="order.paid", object_id=str(order.pk)).count() == 1
        assert LedgerTransaction.objects.filter(order=order, type="payment").count() == 1
    numbers = [o.invoice_number for o in orders]
    assert len(set(numbers)) == 2 and all(numbers)
    Subscription.objects.get(pk=subscription.pk)  # still there; nothing else reacted twice
