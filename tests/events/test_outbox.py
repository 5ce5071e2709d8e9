"""The outbox: an event exists exactly when its change committed, every consumer of it runs
once in effect, failures retry with backoff, and the sweeper finishes what was left."""

from datetime import timedelta

import pytest
import time_machine
from django.db import transaction
from rest_framework import serializers

from accounts.models import Customer
from core import clock
from core.audit import AuditEntry
from core.events import registry, services
from core.events.models import Event, EventHandling


class _CustomerOut(serializers.ModelSerializer):
    class Meta:
        model = Customer
        fields = ["id", "email", "name"]


@pytest.fixture
def events_registry(monkeypatch):
    """A registry of its own: a test kind and the consumers each test registers."""
    fresh = registry.Registry()
    monkeypatch.setattr(registry, "REGISTRY", fresh)
    monkeypatch.setattr(services, "REGISTRY", fresh)
    registry.register_object(
        "testcustomer",
        model=Customer,
        serializer=_CustomerOut,
        events={"noted": "A test event."},
    )
    return fresh


def _customer(org, email="ada@example.com"):
    # A bare row: customer_create records customer.* events, which this registry lacks.
    return Customer.objects.create(organization=org, email=email, name="Ada")


@pytest.mark.django_db(transaction=True)
def test_an_event_exists_exactly_when_its_change_committed(org, events_registry):
    seen = []
    registry.register_consumer("seen", types=["testcustomer.noted"], handle=lambda e: seen.append(e.pk))

    with pytest.raises(ZeroDivisionError), transaction.atomic():
        customer = _customer(org)
        services.event_record(type="testcustomer.noted", obj=customer)
        raise ZeroDivisionError("the change fails after the event")
    assert not Event.objects.exists() and seen == []

    with transaction.atomic():
        customer = _customer(org)
        event = services.event_record(type="testcustomer.noted", obj=customer)
        assert seen == []  # consumers run after commit
    event.refresh_from_db()
    assert event.data == {"id": str(customer.pk), "email": "ada@example.com", "name": "Ada"}
    assert event.organization_id == org.pk and event.dispatched_at is not None
    assert seen == [event.pk]
    (handling,) = EventHandling.objects.all()
    assert (handling.consumer, handling.status, handling.attempts) == ("seen", "done", 1)
    envelope = services.event_envelope(event)
    assert envelope["id"].startswith("evt_") and envelope["type"] == "testcustomer.noted"


def test_recording_outside_a_transaction_or_of_an_unknown_type_is_refused(org, events_registry):
    customer = _customer(org)
    with pytest.raises(LookupError):
        services.event_record(type="testcustomer.vanished", obj=customer)
    with pytest.raises(LookupError):
        services.event_record(type="testcustomer.noted", obj=org)


@pytest.mark.django_db(transaction=True)
def test_recording_needs_the_changes_transaction(org, events_registry):
    customer = _customer(org)
    with pytest.raises(RuntimeError):
        services.event_record(type="testcustomer.noted", obj=customer)


@pytest.mark.django_db(transaction=True)
def test_a_failing_consumer_retries_with_backoff_and_does_not_hold_up_another(org, events_registry):
    failures = {"left": 2}
    effects = []

    def flaky(event):
        Customer.objects.filter(pk=event.object_id).update(name="touched")  # rolled back on failure
        if failures["left"]:
            failures["left"] -= 1
            raise RuntimeError("receiver down")
        effects.append(event.pk)

    registry.register_consumer("flaky", types=["testcustomer.noted"], handle=flaky)
    registry.register_consumer("steady", types=[registry.ANY], handle=lambda e: effects.append("steady"))
    with transaction.atomic():
        customer = _customer(org)
        services.event_record(type="testcustomer.noted", obj=customer)

    flaky_row = EventHandling.objects.get(consumer="flaky")
    assert EventHandling.objects.get(consumer="steady").status == "done"
    assert flaky_row.status == "failed" and "receiver down" in flaky_row.error
    assert flaky_row.attempts == 1
    customer.refresh_from_db()
    assert customer.name == "Ada"  # the consumer's write rolled back with its failure
    first_delay = flaky_row.next_attempt_at - clock.now()
    assert timedelta(seconds=5) < first_delay < timedelta(seconds=15)

    assert services.events_sweep() == 0  # not due yet
    with time_machine.travel(flaky_row.next_attempt_at + timedelta(seconds=1)):
        assert services.events_sweep() == 1
    flaky_row.refresh_from_db()
    assert flaky_row.attempts == 2 and flaky_row.status == "failed"
    assert flaky_row.next_attempt_at - clock.now() > first_delay  # backs off

    with time_machine.travel(flaky_row.next_attempt_at + timedelta(seconds=1)):
        assert services.events_sweep() == 1
        flaky_row.refresh_from_db()
        assert flaky_row.status == "done" and flaky_row.attempts == 3 and flaky_row.error == ""
        customer.refresh_from_db()
        assert customer.name == "touched"
        # Convergence: nothing is left to run, and running again runs nothing.
        assert services.events_sweep() == 0
        assert services.events_process(event_ids=list(Event.objects.values_list("pk", flat=True))) == 0
    assert effects == ["steady", flaky_row.event_id]


@pytest.mark.django_db(transaction=True)
def test_the_sweeper_finishes_what_a_lost_message_left(org, events_registry, monkeypatch):
    ran = []
    registry.register_consumer("ran", types=["testcustomer.noted"], handle=lambda e: ran.append(e.pk))
    with monkeypatch.context() as lost_message, transaction.atomic():
        lost_message.setattr(services, "_dispatch_after_commit", lambda ids: None)
        customer = _customer(org)
        event = services.event_record(type="testcustomer.noted", obj=customer)
    assert ran == []
    assert services.events_sweep() == 0  # a fresh event still has its message coming
    with time_machine.travel(clock.now() + timedelta(minutes=2)):
        assert services.events_sweep() == 1
        assert ran == [event.pk]
        # A handling written but never run (the dispatcher died after its commit) is found too.
        EventHandling.objects.filter(consumer="ran").update(status="pending", attempts=0)
    with time_machine.travel(clock.now() + timedelta(minutes=4)):
        assert services.events_sweep() == 1
        assert ran == [event.pk, event.pk]  # at least once: consumers are idempotent
        assert services.events_sweep() == 0


@pytest.mark.django_db(transaction=True)
def test_a_consumer_that_keeps_failing_is_given_up_and_an_operator_can_retry_it(
    org, events_registry, operator
):
    calls = []

    def broken(event):
        calls.append(event.pk)
        raise ValueError("bad")

    registry.register_consumer("broken", types=["testcustomer.noted"], handle=broken, max_attempts=2)
    with transaction.atomic():
        services.event_record(type="testcustomer.noted", obj=_customer(org))
    row = EventHandling.objects.get()
    with time_machine.travel(row.next_attempt_at + timedelta(seconds=1)):
        services.events_sweep()
    row.refresh_from_db()
    assert row.status == "failed" and row.attempts == 2 and row.next_attempt_at is None
    with time_machine.travel(clock.now() + timedelta(days=1)):
        assert services.events_sweep() == 0  # given up: the sweeper leaves it
    services.event_handling_retry(handling=row, actor=operator)
    row.refresh_from_db()
    assert row.attempts == 3 and len(calls) == 3
    assert AuditEntry.objects.filter(action="event_handling.retry").count() == 1


@pytest.mark.django_db(transaction=True)
def test_bulk_recording_writes_one_event_per_object_in_order(org, events_registry):
    ran = []
    registry.register_consumer("ran", types=["testcustomer.noted"], handle=lambda e: ran.append(e.object_id))
    with transaction.atomic():
        customers = [_customer(org, f"c{i}@example.com") for i in range(5)]
        events = services.events_record_bulk(
            type="testcustomer.noted", objects=Customer.objects.filter(pk__in=[c.pk for c in customers])
        )
    assert len(events) == 5
    stored = list(Event.objects.order_by("pk"))
    assert [e.data["email"] for e in stored] == [e.data["email"] for e in events]
    assert sorted(ran) == sorted(str(c.pk) for c in customers)
    assert EventHandling.objects.filter(status="done").count() == 5


@pytest.mark.django_db(transaction=True)
def test_a_burst_is_handled_in_batches_and_a_bad_event_fails_alone(
    org, events_registry, django_assert_max_num_queries
):
    batches, singles = [], []

    def many(events):
        if any(e.data["email"] == "bad@example.com" for e in events):
            raise ValueError("one bad event")
        batches.append([e.pk for e in events])

    def one(event):
        if event.data["email"] == "bad@example.com":
            raise ValueError("the bad event")
        singles.append(event.pk)

    registry.register_consumer("batched", types=["testcustomer.noted"], handle=one, handle_many=many)
    with transaction.atomic():
        good = [_customer(org, f"c{i}@example.com") for i in range(40)]
        events = services.events_record_bulk(type="testcustomer.noted", objects=good)
    assert len(batches) == 1 and batches[0] == [e.pk for e in events]  # one call, in event order
    assert EventHandling.objects.filter(status="done").count() == 40

    # A burst of 40 costs a bounded number of queries, not one transaction per event.
    with transaction.atomic():
        more = [_customer(org, f"d{i}@example.com") for i in range(40)]
    with django_assert_max_num_queries(20), transaction.atomic():
        services.events_record_bulk(type="testcustomer.noted", objects=more)

    with transaction.atomic():
        mixed = [_customer(org, "bad@example.com"), _customer(org, "fine@example.com")]
        services.events_record_bulk(type="testcustomer.noted", objects=mixed)
    bad = EventHandling.objects.get(event__data__email="bad@example.com")
    fine = EventHandling.objects.get(event__data__email="fine@example.com")
    assert bad.status == "failed" and "the bad event" in bad.error and bad.attempts == 1
    assert fine.status == "done" and singles == [fine.event_id]
    assert services.events_sweep() == 0  # the failure waits for its retry time
