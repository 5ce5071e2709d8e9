"""Deliveries against a real HTTP receiver: signatures, retries with backoff, timeouts, order
per object, automatic disabling and secret rotation."""

import time
from datetime import timedelta

import pytest
import time_machine
from django.db import transaction

from accounts.models import Customer
from billing.webhooks import delivery, services
from billing.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from core import clock
from core.audit import AuditEntry
from core.events.models import Event
from core.events.services import event_record

pytestmark = pytest.mark.django_db


def _customer(org, email="ada@example.com"):
    # A bare row: the tests follow their own note.* events, not the customer.* ones.
    return Customer.objects.create(organization=org, email=email, name="Ada")


@pytest.fixture
def note(committed):
    """Record an event of a customer and commit it (its deliveries are sent)."""

    def record(customer, type="note.made"):
        with committed(), transaction.atomic():
            return event_record(type=type, obj=customer)

    return record


@pytest.fixture
def sweep(committed):
    def run():
        with committed():
            return delivery.webhook_deliveries_sweep()

    return run


def _endpoint(org, url, types=("*",)):
    return services.webhook_endpoint_create(organization=org, url=url, event_types=list(types))


def test_an_event_reaches_the_endpoint_signed_with_standard_webhooks(
    org, receiver, events_registry, note, sweep
):
    _, secret = _endpoint(org, receiver.plan("/ok"))
    assert secret.startswith("whsec_")
    event = note(_customer(org))

    [request] = receiver.at("/ok")
    payload = request.verify(secret)
    assert payload["id"] == event.public_id and payload["type"] == "note.made"
    assert payload["data"]["email"] == "ada@example.com"
    assert request.headers["webhook-id"] == event.public_id
    delivered = WebhookDelivery.objects.get()
    assert (delivered.status, delivered.attempts, delivered.last_status_code) == ("delivered", 1, 200)
    attempt = delivered.attempts_made.get()
    assert attempt.status_code == 200 and attempt.response_excerpt == "answer 200" and not attempt.error

    # Running the consumer and the sender again writes and sends nothing new.
    assert delivery.webhook_deliveries_create(event=event) == 0
    assert sweep() == 0
    assert WebhookDelivery.objects.count() == 1 and WebhookAttempt.objects.count() == 1
    assert len(receiver.received) == 1


def test_only_subscribed_enabled_endpoints_of_the_organization_get_the_event(
    org, make_org, receiver, events_registry, note, committed
):
    _endpoint(org, receiver.plan("/all"))
    _endpoint(org, receiver.plan("/changed"), types=["note.changed"])
    off, _ = _endpoint(org, receiver.plan("/off"))
    with committed():
        services.webhook_endpoint_disable(endpoint=off, reason="test")
    _endpoint(make_org("Other"), receiver.plan("/other"))
    note(_customer(org))
    got = [(r.path, r.body.split('"type":"')[1].split('"')[0]) for r in receiver.received]
    assert got == [("/all", "webhook_endpoint.disabled"), ("/all", "note.made")]


def test_a_failing_receiver_is_retried_with_backoff_until_it_answers(
    org, receiver, events_registry, note, sweep
):
    endpoint, secret = _endpoint(org, receiver.plan("/flaky", 500, 503, 502))
    start = clock.now()
    with time_machine.travel(start, tick=False) as traveller:
        event = note(_customer(org))
        row = WebhookDelivery.objects.get()
        assert (row.status, row.attempts, row.last_status_code) == ("failed", 1, 500)
        waits = []
        for _ in range(3):
            waits.append(row.next_attempt_at - clock.now())
            assert sweep() == 0  # not due yet
            traveller.move_to(row.next_attempt_at)
            sweep()
            row.refresh_from_db()
        assert receiver.at("/flaky")[-1].verify(secret)["id"] == event.public_id
    assert row.status == "delivered" and row.attempts == 4 and row.delivered_at
    # 5 s, 5 min, 30 min, each ±20 %.
    for wait, base in zip(waits, [5, 300, 1800], strict=True):
        assert base * 0.8 <= wait.total_seconds() <= base * 1.2
    codes = list(row.attempts_made.order_by("id").values_list("status_code", flat=True))
    assert codes == [500, 503, 502, 200]
    requests = receiver.at("/flaky")
    assert {r.headers["webhook-id"] for r in requests} == {event.public_id}  # stable across retries
    for r in requests:
        r_time = int(r.headers["webhook-timestamp"])
        assert r_time >= int(start.timestamp())
    endpoint.refresh_from_db()
    assert endpoint.failing_since is None  # the success ended the streak


def test_retries_stop_after_about_three_days(org, receiver, events_registry, note, sweep):
    _endpoint(org, receiver.plan("/down", *[500] * 20))
    start = clock.now()
    with time_machine.travel(start, tick=False) as traveller:
        note(_customer(org))
        row = WebhookDelivery.objects.get()
        while row.status == "failed":
            traveller.move_to(row.next_attempt_at)
            WebhookEndpoint.objects.update(failing_since=None)  # keep auto-disable out of the way
            sweep()
            row.refresh_from_db()
        last = clock.now()
    assert row.status == "abandoned" and row.attempts == delivery.MAX_ATTEMPTS
    assert timedelta(days=2) < last - start < timedelta(days=3, hours=12)


def test_a_receiver_that_hangs_past_the_timeout_is_a_failed_attempt(
    org, receiver, events_registry, settings, note
):
    settings.RECUR_WEBHOOK_TIMEOUT_SECONDS = 0.5
    _endpoint(org, receiver.plan("/hang", ("hang", 2)))
    note(_customer(org))
    row = WebhookDelivery.objects.get()
    attempt = row.attempts_made.get()
    assert row.status == "failed" and attempt.status_code is None
    assert attempt.error.startswith("timeout") and 400 <= attempt.duration_ms < 2000


def test_one_objects_events_wait_for_its_retry_while_other_objects_flow(
    org, receiver, events_registry, note, sweep
):
    url = receiver.url + "/ordered"
    _, secret = _endpoint(org, url)
    a, b = _customer(org, "a@example.com"), _customer(org, "b@example.com")
    receiver.plans["/ordered"] = [500]  # object A's first event fails once
    start = clock.now()
    with time_machine.travel(start, tick=False) as traveller:
        a1 = note(a)
        a2 = note(a, "note.changed")
        b1 = note(b)
        b2 = note(b, "note.changed")
        got = [r.verify(secret)["id"] for r in receiver.at("/ordered")]
        assert got == [a1.public_id, b1.public_id, b2.public_id]  # a2 waits behind a1's retry
        a1_row = WebhookDelivery.objects.get(event=a1)
        assert WebhookDelivery.objects.get(event=a2).status == "pending"
        traveller.move_to(a1_row.next_attempt_at)
        sweep()
    got = [r.verify(secret)["id"] for r in receiver.at("/ordered")]
    assert got[3:] == [a1.public_id, a2.public_id]
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"delivered"}


def test_a_failing_endpoint_does_not_hold_back_another(org, receiver, events_registry, settings, note):
    settings.RECUR_WEBHOOK_TIMEOUT_SECONDS = 1
    settings.RECUR_WEBHOOK_ENDPOINT_CONCURRENCY = 2
    settings.RECUR_WEBHOOK_SENDER_CONCURRENCY = 4
    slow, _ = _endpoint(org, receiver.plan("/slow", *[("hang", 3)] * 10))
    fast, fast_secret = _endpoint(org, receiver.plan("/fast"))
    WebhookEndpoint.objects.update(enabled=False)  # queue the deliveries first, then send at once
    events = [note(_customer(org, f"c{i}@example.com")) for i in range(6)]
    for event in events:
        for endpoint in (slow, fast):
            WebhookDelivery.objects.create(
                organization=org, endpoint=endpoint, event=event, object_key=f"note:{event.object_id}",
                next_attempt_at=clock.now(),
            )  # fmt: skip
    WebhookEndpoint.objects.update(enabled=True)
    started = time.monotonic()
    delivery.webhook_deliveries_send()
    assert len(receiver.at("/fast")) == 6 and len(receiver.at("/slow")) == 6
    fast_times = [r.at for r in receiver.at("/fast")]
    # Two of four requests in flight wait on the slow endpoint's timeouts (1 s each, 3 rounds);
    # the fast endpoint's six went out through the other two at once.
    assert max(fast_times) - started < 0.9
    assert WebhookDelivery.objects.filter(endpoint=fast, status="delivered").count() == 6
    assert WebhookDelivery.objects.filter(endpoint=slow, status="failed").count() == 6
    assert fast_secret and receiver.at("/fast")[0].verify(fast_secret)


def test_an_endpoint_failing_for_a_day_is_disabled_with_an_audit_entry_and_an_event(
    org, receiver, events_registry, note, sweep
):
    endpoint, _ = _endpoint(org, receiver.plan("/dead", *[500] * 20))
    _, watcher_secret = _endpoint(org, receiver.plan("/watcher"), types=["webhook_endpoint.disabled"])
    start = clock.now()
    with time_machine.travel(start, tick=False) as traveller:
        note(_customer(org))
        endpoint.refresh_from_db()
        assert endpoint.failing_since == start
        traveller.shift(timedelta(hours=23))
        sweep()
        endpoint.refresh_from_db()
        assert endpoint.enabled
        traveller.shift(timedelta(hours=1, seconds=1))
        sweep()
        endpoint.refresh_from_db()
        [told] = receiver.at("/watcher")
        assert told.verify(watcher_secret)["data"]["id"] == str(endpoint.pk)
    assert not endpoint.enabled and endpoint.disabled_reason == services.AUTO_DISABLED_REASON
    entry = AuditEntry.objects.get(action="webhook_endpoint.disable")
    assert entry.object_id == str(endpoint.pk) and entry.actor is None
    event = Event.objects.get(type="webhook_endpoint.disabled")
    assert event.object_id == str(endpoint.pk) and event.data["enabled"] is False
    sent = len(receiver.at("/dead"))
    with time_machine.travel(start + timedelta(days=2), tick=False):
        note(_customer(org, "later@example.com"))
        sweep()
    assert len(receiver.at("/dead")) == sent  # nothing more is sent to it


def test_a_success_clears_the_failure_streak(org, receiver, events_registry, note, sweep, committed):
    endpoint, _ = _endpoint(org, receiver.plan("/once", 500))
    start = clock.now()
    with time_machine.travel(start, tick=False) as traveller:
        note(_customer(org))
        traveller.shift(timedelta(seconds=10))
        sweep()
        endpoint.refresh_from_db()
        assert endpoint.failing_since is None
        traveller.shift(timedelta(days=2))
        assert services.webhook_endpoints_disable_failing() == 0


def test_during_a_rotation_both_secrets_sign_and_after_24_hours_only_the_new(
    org, receiver, events_registry, note, committed
):
    endpoint, old = _endpoint(org, receiver.plan("/rotating"))
    start = clock.now()
    with time_machine.travel(start, tick=False) as traveller:
        new = services.webhook_endpoint_rotate_secret(endpoint=endpoint)
        assert new != old and new.startswith("whsec_")
        note(_customer(org))
        first = receiver.at("/rotating")[-1]
        assert first.verify(old) and first.verify(new)
        assert len(first.headers["webhook-signature"].split(" ")) == 2
        traveller.shift(timedelta(hours=24, seconds=1))
        note(_customer(org, "later@example.com"))
        later = receiver.at("/rotating")[-1]
        assert later.verify(new)
        with pytest.raises(Exception, match="No matching signature"):
            later.verify(old)


def test_a_test_event_goes_to_its_endpoint_only(org, receiver, events_registry, committed):
    endpoint, secret = _endpoint(org, receiver.plan("/tested"))
    _endpoint(org, receiver.plan("/bystander"))
    with committed():
        event = services.webhook_endpoint_send_test(endpoint=endpoint)
    [request] = receiver.at("/tested")
    assert request.verify(secret)["type"] == "webhook_endpoint.test" == event.type
    assert not receiver.at("/bystander")


def test_redeliver_sends_again_with_the_same_webhook_id(
    org, receiver, events_registry, operator, note, committed
):
    endpoint, _ = _endpoint(org, receiver.plan("/again", 500, 500))
    with time_machine.travel(clock.now(), tick=False) as traveller:
        event = note(_customer(org))
        row = WebhookDelivery.objects.get()
        with committed():
            services.webhook_delivery_redeliver(delivery=row, actor=operator)  # answers 500 again
        traveller.shift(timedelta(hours=1))
        row.refresh_from_db()
        assert row.status == "failed" and row.attempts == 2
        with committed():
            assert services.webhook_endpoint_redeliver_failed(endpoint=endpoint, actor=operator) == 1
    row.refresh_from_db()
    assert row.status == "delivered" and row.attempts == 3
    assert {r.headers["webhook-id"] for r in receiver.at("/again")} == {event.public_id}
    actions = set(AuditEntry.objects.values_list("action", flat=True))
    assert {"webhook_delivery.redeliver", "webhook_endpoint.redeliver_failed"} <= actions


def test_in_production_a_private_address_is_refused_again_at_send_time(
    org, receiver, events_registry, settings, note
):
    _endpoint(org, receiver.plan("/inside"))  # saved while private addresses were allowed
    settings.RECUR_WEBHOOK_ALLOW_PRIVATE = False
    note(_customer(org))
    assert not receiver.received  # no request was made
    attempt = WebhookAttempt.objects.get()
    assert attempt.status_code is None and attempt.error.startswith("refused:")
