"""Dispute events Recur cannot use are stored, marked ignored with a note, and change nothing."""

import uuid

import pytest

from billing.disputes.models import Dispute
from billing.ledger.models import LedgerTransaction
from billing.payments.models import ExternalEvent
from tests.disputes import events

pytestmark = pytest.mark.django_db


class UnknownPayment:
    """A charge of another platform: ids Recur has never seen."""

    pk = uuid.uuid4()
    amount = 5000
    currency = "usd"
    processor_payment_id = "pi_unknown_to_recur"
    processor_charge_id = "ch_unknown_to_recur"


def test_a_dispute_on_a_charge_recur_does_not_know_is_ignored(client, webhook_endpoint, paid_order):
    events.deliver(
        client,
        webhook_endpoint,
        events.event("created", events.dispute(UnknownPayment(), withdrawn=True, id="dp_elsewhere")),
    )
    event = ExternalEvent.objects.get()
    assert (event.type, event.status) == ("charge.dispute.created", "ignored")
    assert "no Recur payment" in event.note
    assert not Dispute.objects.exists()
    assert not LedgerTransaction.objects.filter(type__startswith="dispute").exists()


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"status": "escalated"}, "status"),
        ({"amount": "12.00"}, "amount"),
        ({"amount": 0}, "amount"),
        ({"currency": ""}, "currency"),
        ({"id": ""}, "no id"),
    ],
)
def test_a_malformed_dispute_is_ignored_with_the_reason(client, webhook_endpoint, paid_order, change, why):
    _order, payment = paid_order
    snapshot = {**events.dispute(payment, withdrawn=True), **change}
    events.deliver(client, webhook_endpoint, events.event("created", snapshot))
    event = ExternalEvent.objects.get()
    assert event.status == "ignored"
    assert event.note.startswith("malformed dispute") and why in event.note.lower()
    assert not Dispute.objects.exists()
    assert not LedgerTransaction.objects.filter(type__startswith="dispute").exists()


def test_dispute_events_no_longer_wait_for_the_feature(client, webhook_endpoint, paid_order):
    _order, payment = paid_order
    for event_type in ("created", "updated", "closed", "funds_withdrawn", "funds_reinstated"):
        events.deliver(client, webhook_endpoint, events.event(event_type, events.dispute(payment)))
    assert set(ExternalEvent.objects.values_list("status", flat=True)) == {"processed"}
