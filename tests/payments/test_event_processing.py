"""Exactly once in effect: duplicates, races and any delivery order converge on one state."""

import threading
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test import TestCase
from djstripe.models import WebhookEventTrigger

from billing.payments import events, receivers
from billing.payments.models import ExternalEvent, Payment
from billing.payments.selectors import reference_settled_payment
from core import clock
from core.models import AuditEntry
from tests.payments import stripe_events

STATE_FIELDS = (
    "status",
    "processor_payment_id",
    "processor_charge_id",
    "amount_refunded",
    "risk_level",
    "risk_score",
    "decline_code",
    "balance_transaction_id",
)


def state(payment) -> dict:
    payment.refresh_from_db()
    return {name: getattr(payment, name) for name in STATE_FIELDS}


@pytest.fixture
def payment(make_payment):
    payment = make_payment()
    Payment.objects.filter(pk=payment.pk).update(processor_payment_id="pi_test_1")
    payment.refresh_from_db()
    return payment


def deliver(client, endpoint, *payloads):
    for payload in payloads:
        assert stripe_events.post(client, endpoint, payload).status_code == 200


@pytest.mark.django_db
def test_duplicate_delivery_is_processed_once(client, webhook_endpoint, payment):
    payload = stripe_events.event("payment_intent.succeeded", stripe_events.payment_intent(payment))
    deliver(client, webhook_endpoint, payload)
    payment.refresh_from_db()
    first_success = payment.succeeded_at
    deliver(client, webhook_endpoint, payload)

    assert WebhookEventTrigger.objects.count() == 2  # every delivery is stored
    event = ExternalEvent.objects.get()
    assert (event.status, event.attempts) == (ExternalEvent.Status.PROCESSED, 1)
    payment.refresh_from_db()
    assert payment.status == Payment.Status.SUCCEEDED
    assert payment.succeeded_at == first_success


@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicate_deliveries(client, webhook_endpoint, payment):
    from django.test import Client

    payload = stripe_events.event("payment_intent.succeeded", stripe_events.payment_intent(payment))
    barrier = threading.Barrier(4)
    statuses = []

    def send():
        try:
            barrier.wait()
            statuses.append(stripe_events.post(Client(), webhook_endpoint, payload).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * 4
    assert WebhookEventTrigger.objects.filter(valid=True).count() == 4
    event = ExternalEvent.objects.get()
    assert (event.status, event.attempts) == (ExternalEvent.Status.PROCESSED, 1)
    assert state(payment)["status"] == Payment.Status.SUCCEEDED


def charge_events(payment, t0: int):
    charge = stripe_events.charge(payment, id="ch_test_1")
    succeeded = stripe_events.event("charge.succeeded", charge, created=t0)
    refunded = stripe_events.event(
        "charge.refunded", {**charge, "amount_refunded": 500, "refunded": False}, created=t0 + 60
    )
    return succeeded, refunded


@pytest.mark.django_db
def test_charge_refunded_before_charge_succeeded_ends_like_in_order(client, webhook_endpoint, make_payment):
    t0 = int(clock.now().timestamp())
    in_order, reversed_order = make_payment(reference="order:a"), make_payment(reference="order:b")
    for p in (in_order, reversed_order):
        Payment.objects.filter(pk=p.pk).update(processor_payment_id=f"pi_{p.reference[-1]}")
        p.refresh_from_db()

    succeeded, refunded = charge_events(in_order, t0)
    deliver(client, webhook_endpoint, succeeded, refunded)
    succeeded, refunded = charge_events(reversed_order, t0)
    deliver(client, webhook_endpoint, refunded, succeeded)

    expected = {**state(in_order), "processor_payment_id": "pi_b"}
    assert state(reversed_order) == expected
    assert expected["status"] == Payment.Status.SUCCEEDED
    assert expected["amount_refunded"] == 500
    assert expected["risk_level"] == "normal"


@pytest.mark.django_db
def test_terminal_state_does_not_move_back(client, webhook_endpoint, payment):
    t0 = int(clock.now().timestamp())
    success = stripe_events.event(
        "payment_intent.succeeded", stripe_events.payment_intent(payment), created=t0
    )
    later_failure = stripe_events.event(
        "payment_intent.payment_failed",
        stripe_events.payment_intent(
            payment, "requires_payment_method", last_payment_error={"code": "card_declined"}
        ),
        created=t0 + 5,
    )
    older_processing = stripe_events.event(
        "payment_intent.processing", stripe_events.payment_intent(payment, "processing"), created=t0 - 5
    )
    deliver(client, webhook_endpoint, success, later_failure, older_processing)
    assert state(payment)["status"] == Payment.Status.SUCCEEDED


@pytest.mark.django_db
def test_same_intent_failed_then_succeeded_moves_forward(client, webhook_endpoint, payment):
    t0 = int(clock.now().timestamp())
    failed = stripe_events.event(
        "payment_intent.payment_failed",
        stripe_events.payment_intent(
            payment, last_payment_error={"code": "card_declined", "message": "Declined"}
        ),
        created=t0,
    )
    succeeded = stripe_events.event(
        "payment_intent.succeeded", stripe_events.payment_intent(payment), created=t0 + 30
    )
    deliver(client, webhook_endpoint, succeeded, failed)  # out of order
    result = state(payment)
    assert result["status"] == Payment.Status.SUCCEEDED
    assert result["decline_code"] == "card_declined"  # the failed try stays on record


@pytest.mark.django_db
@pytest.mark.parametrize("late_success_first", [True, False])
def test_success_of_an_earlier_attempt_after_failure_of_a_later_one(
    client, webhook_endpoint, make_payment, late_success_first
):
    t0 = int(clock.now().timestamp())
    first, second = make_payment(reference="checkout:x"), make_payment(reference="checkout:x")
    assert (first.attempt, second.attempt) == (1, 2)
    success = stripe_events.event(
        "payment_intent.succeeded", stripe_events.payment_intent(first), created=t0 + 10
    )
    failure = stripe_events.event(
        "payment_intent.payment_failed",
        stripe_events.payment_intent(
            second, "requires_payment_method", last_payment_error={"code": "card_declined"}
        ),
        created=t0,
    )
    deliver(client, webhook_endpoint, *([success, failure] if late_success_first else [failure, success]))
    assert state(first)["status"] == Payment.Status.SUCCEEDED
    assert state(second)["status"] == Payment.Status.FAILED
    assert reference_settled_payment("checkout:x") == first


@pytest.mark.django_db
def test_events_of_later_features_are_stored_as_deferred(client, webhook_endpoint):
    payout = {"id": "po_1", "object": "payout", "amount": 5000, "status": "paid"}
    deliver(
        client,
        webhook_endpoint,
        stripe_events.event("payout.paid", payout),
        stripe_events.event("account.updated", {"id": "acct_1", "object": "account"}),
    )
    assert set(ExternalEvent.objects.values_list("status", flat=True)) == {ExternalEvent.Status.DEFERRED}


@pytest.mark.django_db
def test_event_for_a_payment_we_do_not_know_is_ignored(client, webhook_endpoint):
    orphan = {"id": "pi_elsewhere", "object": "payment_intent", "status": "succeeded", "metadata": {}}
    deliver(client, webhook_endpoint, stripe_events.event("payment_intent.succeeded", orphan))
    assert ExternalEvent.objects.get().status == ExternalEvent.Status.IGNORED


@pytest.mark.django_db
def test_setup_intent_sets_the_default_payment_method(client, webhook_endpoint, customer):
    customer.stripe_customer_id = "cus_test_1"
    customer.save()
    intent = {"id": "seti_1", "object": "setup_intent", "customer": "cus_test_1", "payment_method": "pm_new"}
    deliver(client, webhook_endpoint, stripe_events.event("setup_intent.succeeded", intent))
    customer.refresh_from_db()
    assert customer.default_payment_method_id == "pm_new"


@pytest.mark.django_db
def test_failing_receiver_is_recorded_and_retried_with_backoff(
    client, webhook_endpoint, payment, monkeypatch
):
    real = receivers.RECEIVERS["payment_intent.succeeded"]

    def broken(event):
        raise RuntimeError("database hiccup")

    monkeypatch.setitem(receivers.RECEIVERS, "payment_intent.succeeded", broken)
    payload = stripe_events.event("payment_intent.succeeded", stripe_events.payment_intent(payment))
    assert (
        stripe_events.post(client, webhook_endpoint, payload).status_code == 200
    )  # accepted: our problem, not Stripe's

    event = ExternalEvent.objects.get()
    assert event.status == ExternalEvent.Status.FAILED
    assert "database hiccup" in event.error
    assert event.next_attempt_at is not None
    assert state(payment)["status"] == Payment.Status.PENDING  # the receiver's writes were rolled back

    assert events.external_events_sweep() == 0  # not due yet
    monkeypatch.setitem(receivers.RECEIVERS, "payment_intent.succeeded", real)
    with time_machine.travel(event.next_attempt_at + timedelta(seconds=1)):
        assert events.external_events_sweep() == 1
    event.refresh_from_db()
    assert (event.status, event.attempts, event.error) == (ExternalEvent.Status.PROCESSED, 2, "")
    assert state(payment)["status"] == Payment.Status.SUCCEEDED
    assert events.external_events_sweep() == 0  # converged


@pytest.mark.django_db
def test_gives_up_after_max_attempts(settings, payment, monkeypatch):
    settings.RECUR_EVENT_MAX_ATTEMPTS = 2
    monkeypatch.setitem(receivers.RECEIVERS, "payment_intent.succeeded", lambda e: 1 / 0)
    payload = stripe_events.event("payment_intent.succeeded", stripe_events.payment_intent(payment))
    event, _ = events.external_event_record(payload=payload)
    events.external_event_process(event_id=event.pk)
    events.external_event_process(event_id=event.pk)
    event.refresh_from_db()
    assert (event.status, event.attempts, event.next_attempt_at) == (ExternalEvent.Status.FAILED, 2, None)
    with time_machine.travel(clock.now() + timedelta(days=2)):
        assert events.external_events_sweep() == 0  # left for an operator


@pytest.mark.django_db
def test_lost_task_message_is_recovered_by_the_sweeper(payment, django_capture_on_commit_callbacks):
    payload = stripe_events.event("payment_intent.succeeded", stripe_events.payment_intent(payment))
    with django_capture_on_commit_callbacks(execute=False):  # the enqueue never happens: worker died
        event, created = events.external_event_record(payload=payload)
    assert created and event.status == ExternalEvent.Status.PENDING
    assert events.external_events_sweep() == 0  # too fresh: its message may still be on the way
    with time_machine.travel(clock.now() + timedelta(minutes=3)):
        assert events.external_events_sweep() == 1
    event.refresh_from_db()
    assert event.status == ExternalEvent.Status.PROCESSED
    assert state(payment)["status"] == Payment.Status.SUCCEEDED


@pytest.mark.django_db
def test_processing_twice_has_the_effect_of_once(payment):
    payload = stripe_events.event("payment_intent.succeeded", stripe_events.payment_intent(payment))
    event, _ = events.external_event_record(payload=payload)
    events.external_event_process(event_id=event.pk)
    before = state(payment)
    events.external_event_process(event_id=event.pk)
    event.refresh_from_db()
    assert event.attempts == 1
    assert state(payment) == before


@pytest.mark.django_db
def test_operator_replay_and_ignore_are_audited(payment, operator, monkeypatch):
    monkeypatch.setitem(receivers.RECEIVERS, "payment_intent.succeeded", lambda e: 1 / 0)
    payload = stripe_events.event("payment_intent.succeeded", stripe_events.payment_intent(payment))
    event, _ = events.external_event_record(payload=payload)
    events.external_event_process(event_id=event.pk)
    monkeypatch.undo()

    with TestCase.captureOnCommitCallbacks(execute=True):
        events.external_event_replay(event=event, actor=operator, reason="fixed the bug")
    event.refresh_from_db()
    assert event.status == ExternalEvent.Status.PROCESSED
    assert AuditEntry.objects.filter(action="external_event.replay", object_id=str(event.pk)).exists()

    other, _ = events.external_event_record(
        payload=stripe_events.event("payout.paid", {"id": "po_9", "object": "payout"})
    )
    events.external_event_process(event_id=other.pk)
    events.external_event_ignore(event=other, actor=operator, reason="test payout")
    other.refresh_from_db()
    assert other.status == ExternalEvent.Status.IGNORED
    assert AuditEntry.objects.filter(action="external_event.ignore").count() == 1
