"""Collecting owed orders: every order that owes money is due from its row alone, the sweeps
and the enqueued tasks never start two attempts, and retries keep the dunning schedule.

Orders are charged through the manual processor; where a test needs a decline or an
unreachable processor, the processor's network call is replaced (the edge, not our code), and
a lost message is a Celery ``delay`` that sends nothing.
"""

from datetime import timedelta

import pytest
import time_machine
from kombu.exceptions import OperationalError

from billing.orders.models import Order
from billing.orders.selectors import orders_due_for_attempt, orders_due_unscheduled
from billing.orders.services import Line, order_create
from billing.payments import services as payment_services
from billing.payments.manual import ManualProcessor
from billing.payments.models import Payment
from billing.payments.processor import ChargeOutcome, ProcessorError
from billing.subscriptions import dunning, renewals, services, tasks
from billing.subscriptions.models import Subscription
from tests.subscriptions.scenario import START, price_of, subscribe

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def lost_messages(monkeypatch):
    """Every collection message is lost on its way to a worker."""
    lost = []
    monkeypatch.setattr(tasks.collect_order_payment, "delay", lambda *args, **kwargs: lost.append(args))
    return lost


@pytest.fixture
def renewed(manual_org, plans):
    """Three subscriptions of the same plan whose period ended at ``when``."""
    subscriptions = [subscribe(manual_org, plans["basic"]) for _ in range(3)]
    return subscriptions, subscriptions[0].current_period_end + timedelta(minutes=1)


def decline(monkeypatch, code: str = "card_declined"):
    def declined(self, **kwargs):
        return ChargeOutcome(
            status="failed", payment_intent_id=f"pi_{kwargs['idempotency_key']}", decline_code=code
        )

    monkeypatch.setattr(ManualProcessor, "payment_intent_create", declined)


def unreachable(monkeypatch):
    def timeout(self, **kwargs):
        raise ProcessorError("read timeout", retryable=True)

    monkeypatch.setattr(ManualProcessor, "payment_intent_create", timeout)


def test_a_renewal_whose_messages_are_lost_is_collected_by_the_minute_sweep(renewed, lost_messages):
    _, when = renewed
    with time_machine.travel(when, tick=False):
        assert renewals.renewals_run().cycled == 3
        cycle = Order.objects.filter(billing_reason="subscription_cycle")
        assert len(lost_messages) == 3 and not Payment.objects.filter(trigger="cycle").exists()
        assert {o.next_payment_attempt_at for o in cycle} == {when}  # due from the row alone
        assert not orders_due_unscheduled().exists()
        assert orders_due_for_attempt(now=when).count() == 3

        assert dunning.order_collections_sweep() == 3
        assert dunning.order_collections_sweep() == 0  # convergence
        assert dunning.dunning_run() == 0
        assert renewals.renewals_run().cycled == 0
    assert {(o.status, o.next_payment_attempt_at) for o in cycle.all()} == {("paid", None)}
    assert list(Payment.objects.filter(trigger="cycle").values_list("attempt", flat=True)) == [1, 1, 1]
    # The lost messages arriving late change nothing.
    for (order_id,) in lost_messages:
        dunning.order_payment_collect(order_id=order_id)
    assert Payment.objects.filter(trigger="cycle").count() == 3


def test_a_broker_outage_after_commit_leaves_the_orders_to_the_sweep(renewed, monkeypatch):
    def broker_down(*args, **kwargs):
        raise OperationalError("Error 111 connecting to localhost:6379. Connection refused.")

    monkeypatch.setattr(tasks.collect_order_payment, "delay", broker_down)
    _, when = renewed
    with time_machine.travel(when, tick=False):
        assert renewals.renewals_run().cycled == 3  # the renewal itself is not undone
        assert renewals.renewals_run().cycled == 0
        assert not orders_due_unscheduled().exists()
        assert dunning.order_collections_sweep() == 3
    assert set(
        Order.objects.filter(billing_reason="subscription_cycle").values_list("status", flat=True)
    ) == {"paid"}


def test_change_invoices_resumes_and_pending_orders_are_due_when_written(manual_org, plans, lost_messages):
    upgraded = subscribe(manual_org, plans["basic"])
    paused = subscribe(manual_org, plans["pro"])
    later = START + timedelta(days=10)
    with time_machine.travel(later, tick=False):
        _, invoice = services.subscription_change(
            subscription=upgraded, price_id=price_of(plans["pro"]).pk, proration_behavior="invoice"
        )
        Subscription.objects.filter(pk=paused.pk).update(status="paused")
        _, resumed = services.subscription_resume(subscription=paused)
        purchase = order_create(
            organization=manual_org, customer=upgraded.customer, billing_reason="purchase", currency="usd",
            lines=[Line(label="Add-on", amount=500)],
        )  # fmt: skip
        owed = [invoice.pk, resumed.pk, purchase.pk]
        assert len(lost_messages) == 2
        assert set(Order.objects.filter(pk__in=owed).values_list("next_payment_attempt_at", flat=True)) == {
            later
        }
        assert not orders_due_unscheduled().exists()
        assert dunning.order_collections_sweep() == 3
        assert dunning.order_collections_sweep() == 0
    assert set(Order.objects.filter(pk__in=owed).values_list("status", flat=True)) == {"paid"}


def test_an_attempt_in_flight_is_never_doubled_and_a_canceled_one_is_dunned(
    renewed, lost_messages, monkeypatch
):
    _, when = renewed
    unreachable(monkeypatch)
    with time_machine.travel(when, tick=False):
        renewals.renewals_run()
        assert dunning.order_collections_sweep() == 3  # sent; no answer: the attempts stay pending
        order = Order.objects.filter(billing_reason="subscription_cycle").first()
        pending = Payment.objects.get(reference=order.reference)
        assert pending.status == "pending"
        # The sweeps, the late task and an operator's retry all see the attempt in flight.
        assert dunning.order_collections_sweep() == 0
        assert dunning.dunning_run() == 0
        assert dunning.order_payment_collect(order_id=order.pk).pk == pending.pk
        assert services.order_payment_retry(order=order).pk == pending.pk
        assert Payment.objects.filter(reference__startswith="order:").count() == 3
        assert not orders_due_unscheduled().exists()

    # The processor canceled the intent: the attempt ended without the money, so the order
    # follows the dunning schedule like a failed attempt (never a second attempt in the lease).
    monkeypatch.undo()
    monkeypatch.setattr(tasks.collect_order_payment, "delay", lambda *args, **kwargs: None)
    with time_machine.travel(when, tick=False):
        payment_services.payment_apply_snapshot(payment=pending, status="canceled", observed_at=when)
    order.refresh_from_db()
    retry_at = when + timedelta(days=2)
    assert (order.status, order.next_payment_attempt_at) == ("pending", retry_at)
    with time_machine.travel(when + dunning.COLLECTION_LEASE + timedelta(seconds=1), tick=False):
        assert dunning.order_collections_sweep() == 0  # retries keep the dunning job's cadence
    with time_machine.travel(retry_at, tick=False):
        assert dunning.dunning_run() >= 1
        assert dunning.dunning_run() == 0
    order.refresh_from_db()
    assert order.status == "paid"
    assert list(Payment.objects.filter(reference=order.reference).values_list("attempt", "status")) == [
        (2, "succeeded"),
        (1, "canceled"),
    ]


def test_the_minute_sweep_leaves_retries_to_the_dunning_schedule(renewed, lost_messages, monkeypatch):
    _, when = renewed
    decline(monkeypatch)
    with time_machine.travel(when, tick=False):
        renewals.renewals_run()
        assert dunning.order_collections_sweep() == 3
    order = Order.objects.filter(billing_reason="subscription_cycle").first()
    order.refresh_from_db()
    retry_at = when + timedelta(days=2)
    assert (order.status, order.next_payment_attempt_at, order.dunning_attempts) == ("pending", retry_at, 0)
    assert order.subscription.status == "past_due"
    assert Payment.objects.get(reference=order.reference).trigger == "cycle"
    assert not orders_due_unscheduled().exists()

    with time_machine.travel(retry_at - timedelta(minutes=1), tick=False):
        assert dunning.dunning_run() == 0  # not yet due
    with time_machine.travel(retry_at + timedelta(minutes=5), tick=False):
        assert dunning.order_collections_sweep() == 0  # a retry, not a first attempt
        assert dunning.dunning_run() == 3
        assert dunning.dunning_run() == 0
    order.refresh_from_db()
    assert order.dunning_attempts == 1
    assert list(Payment.objects.filter(reference=order.reference).values_list("trigger", flat=True)) == [
        "dunning_retry",
        "cycle",
    ]


def test_an_order_whose_dunning_ran_out_is_not_reported_unscheduled(renewed, lost_messages, monkeypatch):
    subscriptions, when = renewed
    org = subscriptions[0].organization
    org.dunning_final_action = "unpaid"
    org.save()
    decline(monkeypatch, code="stolen_card")  # hard: straight to the deadline
    with time_machine.travel(when, tick=False):
        renewals.renewals_run()
        dunning.order_collections_sweep()
    order = Order.objects.filter(billing_reason="subscription_cycle").first()
    order.refresh_from_db()
    with time_machine.travel(order.next_payment_attempt_at + timedelta(minutes=1), tick=False):
        assert dunning.dunning_run() == 3
    order.refresh_from_db()
    assert (order.status, order.next_payment_attempt_at, order.subscription.status) == (
        "pending",
        None,
        "unpaid",
    )
    assert not orders_due_unscheduled().exists()
    # An owed order with nothing scheduled, nothing in flight and dunning not run out is the fault.
    Order.objects.filter(pk=order.pk).update(dunning_deadline=None)
    assert list(orders_due_unscheduled()) == [order]
