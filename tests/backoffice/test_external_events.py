"""The External events page: find events, read payload and error, replay or ignore (audited)."""

import pytest
from django.test import TestCase
from django.urls import reverse

from billing.payments import events, receivers
from billing.payments.models import ExternalEvent, Payment
from core.models import AuditEntry
from tests.payments import stripe_events

pytestmark = pytest.mark.django_db


@pytest.fixture
def failed_event(make_payment, monkeypatch):
    payment = make_payment()
    monkeypatch.setitem(receivers.RECEIVERS, "payment_intent.succeeded", lambda e: 1 / 0)
    payload = stripe_events.event("payment_intent.succeeded", stripe_events.payment_intent(payment))
    event, _ = events.external_event_record(payload=payload)
    events.external_event_process(event_id=event.pk)
    monkeypatch.undo()
    event.refresh_from_db()
    assert event.status == ExternalEvent.Status.FAILED
    return event


def test_list_filters_and_detail(backoffice, failed_event):
    events.external_event_record(payload=stripe_events.event("customer.created", {"id": "cus_1"}))
    changelist = reverse("admin:payments_externalevent_changelist")

    failed_only = backoffice.get(changelist, {"status__exact": "failed"})
    assert [e.pk for e in failed_only.context["cl"].result_list] == [failed_event.pk]
    by_type = backoffice.get(changelist, {"type": "customer.created"})
    assert [e.type for e in by_type.context["cl"].result_list] == ["customer.created"]
    by_id = backoffice.get(changelist, {"q": failed_event.event_id})
    assert [e.pk for e in by_id.context["cl"].result_list] == [failed_event.pk]

    detail = backoffice.get(reverse("admin:payments_externalevent_change", args=[failed_event.pk]))
    html = detail.content.decode()
    assert "ZeroDivisionError" in html  # the stored error
    assert failed_event.event_id in html and "recur_payment_id" in html  # the payload
    assert reverse("admin:payments_externalevent_replay", args=[failed_event.pk]) in html


def test_replay_processes_the_event_and_is_audited(backoffice, failed_event, htmx):
    url = reverse("admin:payments_externalevent_replay", args=[failed_event.pk])
    assert backoffice.get(url, **htmx).content.decode().lstrip().startswith("<dialog")

    with TestCase.captureOnCommitCallbacks(execute=True):
        response = backoffice.post(url, {"reason": "bug fixed"}, **htmx)

    assert response.status_code == 200 and response["HX-Redirect"]
    failed_event.refresh_from_db()
    assert failed_event.status == ExternalEvent.Status.PROCESSED
    assert Payment.objects.get().status == Payment.Status.SUCCEEDED
    entry = AuditEntry.objects.get(action="external_event.replay")
    assert (entry.object_id, entry.reason) == (str(failed_event.pk), "bug fixed")


def test_ignore_needs_a_reason(backoffice, failed_event, htmx):
    url = reverse("admin:payments_externalevent_ignore", args=[failed_event.pk])

    empty = backoffice.post(url, {"reason": ""}, **htmx)
    assert empty.status_code == 200 and "This field is required" in empty.content.decode()
    failed_event.refresh_from_db()
    assert failed_event.status == ExternalEvent.Status.FAILED

    backoffice.post(url, {"reason": "test noise"}, **htmx)
    failed_event.refresh_from_db()
    assert failed_event.status == ExternalEvent.Status.IGNORED
    assert AuditEntry.objects.filter(action="external_event.ignore").count() == 1

    again = backoffice.post(url, {"reason": "twice"}, **htmx)
    assert "already ignored" in again.content.decode()


def test_support_may_replay_but_not_ignore(client, make_staff, failed_event, htmx):
    client.force_login(make_staff("support"))
    ignore = reverse("admin:payments_externalevent_ignore", args=[failed_event.pk])
    assert client.post(ignore, {"reason": "x"}, **htmx).status_code == 403
    assert client.get(reverse("admin:payments_externalevent_changelist")).status_code == 200
    failed_event.refresh_from_db()
    assert failed_event.status == ExternalEvent.Status.FAILED


def test_dashboard_counts_failed_events_and_payments(backoffice, failed_event):
    cards = {c.key: c for c in backoffice.get(reverse("admin:index")).context["cards"]}
    assert cards["external_events"].value == "1"
    assert cards["failed_payments_7d"].value == "0"
