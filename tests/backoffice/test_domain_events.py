"""Backoffice: events with their payload and handlings; handlings by status, retried (audited)."""

import pytest
from django.db import transaction
from django.test import TestCase
from django.urls import reverse

from core.events import registry, services
from core.events.models import Event, EventHandling
from core.models import AuditEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def failed_handling(monkeypatch, customer):
    """A consumer that failed on a customer.updated event, then was fixed."""
    state = {"broken": True}

    def handle(event):
        if state["broken"]:
            raise RuntimeError("the receiving system is down")

    monkeypatch.setitem(
        registry.REGISTRY.consumers,
        "test-flaky",
        registry.Consumer(name="test-flaky", types=frozenset(["customer.updated"]), handle=handle),
    )
    with TestCase.captureOnCommitCallbacks(execute=True), transaction.atomic():
        event = services.event_record(type="customer.updated", obj=customer)
    handling = EventHandling.objects.get(event=event, consumer="test-flaky")
    assert handling.status == "failed"
    state["broken"] = False
    return handling


def test_event_list_filters_and_detail(backoffice, failed_handling):
    event = failed_handling.event
    changelist = reverse("admin:events_event_changelist")
    by_type = backoffice.get(changelist, {"type": "customer.updated"})
    assert [e.pk for e in by_type.context["cl"].result_list] == [event.pk]
    by_object = backoffice.get(changelist, {"q": event.object_id})
    assert {e.object_id for e in by_object.context["cl"].result_list} == {event.object_id}
    by_public_id = backoffice.get(changelist, {"q": event.public_id})
    assert [e.pk for e in by_public_id.context["cl"].result_list] == [event.pk]
    assert backoffice.get(changelist, {"q": "evt_zz"}).context["cl"].result_list.count() == 0

    html = backoffice.get(reverse("admin:events_event_change", args=[event.pk])).content.decode()
    assert event.public_id in html and "buyer@example.com" in html  # the payload, pretty printed
    assert "test-flaky" in html and "the receiving system is down" in html  # its handlings
    assert reverse("admin:accounts_customer_change", args=[event.object_id]) in html


def test_handlings_by_status_and_retry_is_audited(backoffice, failed_handling, htmx, operator):
    changelist = reverse("admin:events_eventhandling_changelist")
    failed = backoffice.get(changelist, {"status__exact": "failed"})
    assert [h.pk for h in failed.context["cl"].result_list] == [failed_handling.pk]
    detail = backoffice.get(reverse("admin:events_eventhandling_change", args=[failed_handling.pk]))
    assert "RuntimeError" in detail.content.decode()

    url = reverse("admin:events_eventhandling_retry", args=[failed_handling.pk])
    assert backoffice.get(url, **htmx).content.decode().lstrip().startswith("<dialog")
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = backoffice.post(url, {}, **htmx)
    assert response.status_code == 200 and response["HX-Redirect"]
    failed_handling.refresh_from_db()
    assert (failed_handling.status, failed_handling.attempts) == ("done", 2)
    entry = AuditEntry.objects.get(action="event_handling.retry")
    assert (entry.object_id, entry.actor_id) == (str(failed_handling.pk), operator.pk)

    again = backoffice.post(url, {}, **htmx)  # done: nothing to retry
    assert again.status_code in (200, 404)
    assert AuditEntry.objects.filter(action="event_handling.retry").count() == 1


def test_events_are_read_only(backoffice, failed_handling):
    event = Event.objects.get(pk=failed_handling.event_id)
    assert backoffice.get(reverse("admin:events_event_add")).status_code == 403
    assert backoffice.post(reverse("admin:events_event_delete", args=[event.pk])).status_code == 403
