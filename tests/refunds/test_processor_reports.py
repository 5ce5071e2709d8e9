"""Every refund the processor reports becomes exactly one Refund with one posting, whatever
event carries it (refund.created/updated, charge.refunded with its refunds list, the legacy
charge.refund.updated), in any order, with duplicates; a truncated list is made up by one
not-itemised remainder; impossible reports are refused and move nothing."""

import itertools
import uuid

import pytest

from billing.ledger.models import LedgerTransaction
from billing.payments.models import ExternalEvent, Payment
from billing.refunds import services
from billing.refunds.models import Refund
from billing.refunds.selectors import payments_refund_mismatch
from core import clock
from tests.payments import stripe_events
from tests.refunds.helpers import (
    ledger,
    nothing_changed_snapshot,
    refund_object,
    settled_order,
    settled_payment,
)

pytestmark = pytest.mark.django_db

TOTAL, TAX = 2400, 400  # settled_order: 2000 + 400 tax
T0 = int(clock.now().timestamp()) - 60  # processor times, a minute ago (signatures stay fresh)


@pytest.fixture
def order(org, customer):
    return settled_order(org, customer)


@pytest.fixture
def payment(order):
    payment = settled_payment(order)
    Payment.objects.filter(pk=payment.pk).update(processor_charge_id=f"ch_{uuid.uuid4().hex[:24]}")
    payment.refresh_from_db()
    return payment


def charge(payment, *, amount_refunded: int, refunds: list[dict] | None, has_more: bool = False) -> dict:
    fields = {"id": payment.processor_charge_id, "amount_refunded": amount_refunded, "refunded": True}
    if refunds is not None:
        fields["refunds"] = {
            "object": "list",
            "data": refunds,
            "has_more": has_more,
            "total_count": len(refunds),
        }
    return stripe_events.charge(payment, **fields)


def deliver(client, endpoint, event_type: str, obj: dict, *, at: int, event_id: str | None = None) -> dict:
    payload = stripe_events.event(event_type, obj, created=at, event_id=event_id)
    response = stripe_events.post(client, endpoint, payload)
    assert response.status_code == 200, response.content
    return payload


def live_refunds(order) -> list[Refund]:
    return list(Refund.objects.filter(order=order, status__in=services.ACTIVE).order_by("amount"))


def refund_postings(order) -> dict[str, int]:
    rows = LedgerTransaction.objects.filter(order=order, type__in=["refund", "refund_reversal"])
    return {kind: rows.filter(type=kind).count() for kind in ("refund", "refund_reversal")}


# --- one refund made at the processor, reported by every event type, in any order ----------------


def dashboard_refund_reports(payment, amount: int = 600) -> list[tuple[str, dict, int]]:
    """The events Stripe sends for one refund made in its dashboard, with their times."""
    refund_id = f"re_{uuid.uuid4().hex[:24]}"
    pending = refund_object(payment=payment, id=refund_id, amount=amount, status="pending", created=T0)
    done = {**pending, "status": "succeeded"}
    return [
        ("refund.created", pending, T0),
        ("refund.updated", done, T0 + 1),
        ("charge.refunded", charge(payment, amount_refunded=amount, refunds=[done]), T0 + 1),
        ("charge.refund.updated", done, T0 + 2),
    ]


@pytest.mark.parametrize("permutation", list(itertools.permutations(range(4))), ids=str)
def test_every_report_of_one_refund_converges_on_one_refund(
    org, order, payment, client, webhook_endpoint, permutation
):
    start = ledger(org)
    reports = dashboard_refund_reports(payment)
    sent = []
    for index in permutation:
        event_type, obj, at = reports[index]
        sent.append(deliver(client, webhook_endpoint, event_type, obj, at=at))
    # A duplicate delivery of the first, and the second sent again as a new event.
    deliver(
        client,
        webhook_endpoint,
        sent[0]["type"],
        sent[0]["data"]["object"],
        at=sent[0]["created"],
        event_id=sent[0]["id"],
    )
    deliver(client, webhook_endpoint, sent[1]["type"], sent[1]["data"]["object"], at=sent[1]["created"])

    (refund,) = Refund.objects.filter(order=order)
    assert (refund.origin, refund.status, refund.amount, refund.card_amount, refund.tax_amount) == (
        "processor", "succeeded", 600, 600, 100,
    )  # fmt: skip
    assert refund.processor_refund_id == reports[0][1]["id"]
    assert refund_postings(order) == {"refund": 1, "refund_reversal": 0}
    order.refresh_from_db()
    assert (order.status, order.refunded_amount) == ("partially_refunded", 600)
    assert services.order_refundable(order) == TOTAL - 600
    assert ledger(org)["merchant"] == start["merchant"] - 500
    payment.refresh_from_db()
    assert (payment.processor_amount_refunded, payment.amount_refunded) == (600, 600)
    assert not payments_refund_mismatch().exists()
    assert set(ExternalEvent.objects.values_list("status", flat=True)) == {"processed"}


def test_a_refund_announced_only_by_charge_refunded_is_recorded_and_caps_the_order(
    org, api, order, payment, client, webhook_endpoint
):
    """The issue's case: charge.refunded alone used to change only the payment's figure."""
    full = refund_object(payment=payment, amount=TOTAL, created=T0)
    deliver(
        client,
        webhook_endpoint,
        "charge.refunded",
        charge(payment, amount_refunded=TOTAL, refunds=[full]),
        at=T0,
    )
    (refund,) = live_refunds(order)
    assert (refund.amount, refund.tax_amount, refund.processor_refund_id) == (TOTAL, TAX, full["id"])
    order.refresh_from_db()
    assert order.status == "refunded"
    refused = api.post("/v1/refunds", {"order_id": str(order.pk), "reason": "other"}, format="json")
    assert refused.status_code == 409 and refused.json()["code"] == "order_not_refundable"


def test_the_legacy_charge_refund_updated_alone_is_recorded(org, order, payment, client, webhook_endpoint):
    obj = refund_object(payment=payment, amount=1000, created=T0)
    deliver(client, webhook_endpoint, "charge.refund.updated", obj, at=T0)
    (refund,) = live_refunds(order)
    assert (refund.origin, refund.amount, refund.tax_amount) == ("processor", 1000, 167)
    assert refund_postings(order) == {"refund": 1, "refund_reversal": 0}


def test_a_refund_that_fails_later_gives_the_amount_back_once(org, order, payment, client, webhook_endpoint):
    start = ledger(org)
    obj = refund_object(payment=payment, amount=1000, created=T0)
    deliver(
        client,
        webhook_endpoint,
        "charge.refunded",
        charge(payment, amount_refunded=1000, refunds=[obj]),
        at=T0,
    )
    failed = {**obj, "status": "failed", "failure_reason": "lost_or_stolen_card"}
    deliver(client, webhook_endpoint, "charge.refund.updated", failed, at=T0 + 5)
    deliver(client, webhook_endpoint, "refund.failed", failed, at=T0 + 5)
    deliver(
        client,
        webhook_endpoint,
        "charge.updated",
        charge(payment, amount_refunded=0, refunds=[failed]),
        at=T0 + 6,
    )
    refund = Refund.objects.get(order=order)
    assert (refund.status, refund.failure_reason) == ("failed", "lost_or_stolen_card")
    assert refund_postings(order) == {"refund": 1, "refund_reversal": 1}
    assert ledger(org) == start and services.order_refundable(order) == TOTAL
    assert not payments_refund_mismatch().exists()


# --- a truncated refunds list: the processor's cumulative figure caps the order ----------------


def test_a_truncated_list_is_made_up_by_one_remainder_until_the_refunds_arrive(
    org, order, payment, client, webhook_endpoint
):
    start = ledger(org)
    first = refund_object(payment=payment, amount=400, created=T0)
    second = refund_object(payment=payment, amount=600, created=T0 + 1)
    snapshot = charge(payment, amount_refunded=1000, refunds=[first], has_more=True)
    deliver(client, webhook_endpoint, "charge.refunded", snapshot, at=T0 + 2)

    assert [(r.origin, r.amount) for r in live_refunds(order)] == [
        ("processor", 400),
        ("processor_total", 600),
    ]
    assert services.order_refundable(order) == TOTAL - 1000
    assert ledger(org)["merchant"] == start["merchant"] - (1000 - 167)
    assert not payments_refund_mismatch().exists()

    # The missing refund arrives: it replaces the remainder; nothing is counted twice.
    deliver(client, webhook_endpoint, "refund.created", second, at=T0 + 3)
    assert [(r.origin, r.amount) for r in live_refunds(order)] == [("processor", 400), ("processor", 600)]
    remainder = Refund.objects.get(order=order, origin="processor_total")
    assert remainder.status == "canceled"
    order.refresh_from_db()
    assert order.refunded_amount == 1000
    assert ledger(org)["merchant"] == start["merchant"] - (1000 - 167)
    assert ledger(org)["tax_payable"] == start["tax_payable"] - 167

    # Everything again (duplicates, the old snapshot): nothing new.
    before = nothing_changed_snapshot(order)
    deliver(client, webhook_endpoint, "charge.refunded", snapshot, at=T0 + 2)
    deliver(client, webhook_endpoint, "refund.updated", second, at=T0 + 3)
    deliver(
        client,
        webhook_endpoint,
        "charge.refunded",
        charge(payment, amount_refunded=1000, refunds=[second, first]),
        at=T0 + 4,
    )
    assert nothing_changed_snapshot(order) == before
    assert not payments_refund_mismatch().exists()


def test_a_charge_without_a_refunds_list_caps_by_its_figure(
    org, api, order, payment, client, webhook_endpoint
):
    deliver(
        client,
        webhook_endpoint,
        "charge.refunded",
        charge(payment, amount_refunded=1500, refunds=None),
        at=T0,
    )
    (remainder,) = live_refunds(order)
    assert (remainder.origin, remainder.amount, remainder.status) == ("processor_total", 1500, "succeeded")
    too_much = api.post("/v1/refunds", {"order_id": str(order.pk), "amount": 1000}, format="json")
    assert too_much.status_code == 400 and too_much.json()["errors"][0]["code"] == "amount_exceeds_refundable"
    # An older snapshot with a smaller figure changes nothing.
    deliver(
        client,
        webhook_endpoint,
        "charge.updated",
        charge(payment, amount_refunded=0, refunds=None),
        at=T0 - 10,
    )
    assert [(r.origin, r.amount) for r in live_refunds(order)] == [("processor_total", 1500)]
    # A newer, larger figure grows the remainder (replaced, never doubled).
    deliver(
        client,
        webhook_endpoint,
        "charge.refunded",
        charge(payment, amount_refunded=2000, refunds=None),
        at=T0 + 10,
    )
    assert [(r.origin, r.amount) for r in live_refunds(order)] == [("processor_total", 2000)]
    order.refresh_from_db()
    assert order.refunded_amount == 2000 and services.order_refundable(order) == 400


@pytest.mark.parametrize("permutation", list(itertools.permutations(range(3))), ids=str)
def test_truncated_list_and_items_in_any_order(org, order, payment, client, webhook_endpoint, permutation):
    start = ledger(org)
    first = refund_object(payment=payment, amount=400, created=T0)
    second = refund_object(payment=payment, amount=600, created=T0 + 1)
    reports = [
        ("charge.refunded", charge(payment, amount_refunded=1000, refunds=[second], has_more=True), T0 + 2),
        ("refund.created", first, T0),
        ("refund.updated", second, T0 + 1),
    ]
    for index in permutation:
        deliver(client, webhook_endpoint, *reports[index][:2], at=reports[index][2])
    assert [(r.origin, r.amount) for r in live_refunds(order)] == [("processor", 400), ("processor", 600)]
    order.refresh_from_db()
    assert order.refunded_amount == 1000
    assert ledger(org)["merchant"] == start["merchant"] - (1000 - 167)
    assert not payments_refund_mismatch().exists()


def test_refunds_made_in_recur_are_found_by_their_metadata(org, order, payment, client, webhook_endpoint):
    """Our refund whose processor answer was lost, reported only through the charge."""
    refund = services.refund_create(order=order, amount=1000, reason="other")
    assert (refund.status, refund.processor_refund_id) == ("pending", "")
    ours = refund_object(refund, id=f"re_{uuid.uuid4().hex[:24]}", created=T0)
    deliver(
        client,
        webhook_endpoint,
        "charge.refunded",
        charge(payment, amount_refunded=1000, refunds=[ours]),
        at=T0 + 1,
    )
    deliver(client, webhook_endpoint, "charge.refund.updated", ours, at=T0 + 1)
    refund.refresh_from_db()
    assert (refund.status, refund.processor_refund_id, refund.origin) == ("succeeded", ours["id"], "recur")
    assert Refund.objects.count() == 1 and refund_postings(order) == {"refund": 1, "refund_reversal": 0}


# --- bad input: refused and flagged, nothing moves -----------------------------------------------


def refused(event_type: str) -> ExternalEvent:
    event = ExternalEvent.objects.get(type=event_type)
    assert event.status == "ignored" and event.note.startswith("refused:"), (
        event.status,
        event.note,
        event.error,
    )
    return event


def test_a_refund_for_more_than_the_charge_is_refused(order, payment, client, webhook_endpoint):
    before = nothing_changed_snapshot(order)
    deliver(
        client, webhook_endpoint, "refund.created", refund_object(payment=payment, amount=TOTAL + 1), at=T0
    )
    assert "more than the charge" in refused("refund.created").note
    deliver(
        client,
        webhook_endpoint,
        "charge.refunded",
        charge(payment, amount_refunded=TOTAL + 1, refunds=None),
        at=T0,
    )
    assert "more than its" in refused("charge.refunded").note
    assert nothing_changed_snapshot(order) == before


@pytest.mark.parametrize(
    "changes",
    [
        {"currency": "eur"},
        {"amount": 0},
        {"amount": "600"},
        {"payment_intent": "pi_someone_else", "charge": "ch_someone_else"},
    ],
    ids=["currency", "zero", "string amount", "another charge"],
)
def test_malformed_or_foreign_refund_reports_are_refused(order, payment, client, webhook_endpoint, changes):
    before = nothing_changed_snapshot(order)
    obj = {**refund_object(payment=payment, amount=600), **changes}
    if "payment_intent" in changes:  # it names our refund, but belongs to another charge
        obj["metadata"] = {
            "recur_refund_id": str(services.refund_create(order=order, amount=100, reason="other").pk)
        }
        before = nothing_changed_snapshot(order)
    deliver(client, webhook_endpoint, "refund.updated", obj, at=T0)
    refused("refund.updated")
    assert nothing_changed_snapshot(order) == before


def test_a_refund_of_an_unknown_payment_is_stored_and_applied_to_nothing(
    order, payment, client, webhook_endpoint
):
    before = nothing_changed_snapshot(order)
    stranger = refund_object(payment=payment, amount=600, payment_intent="pi_unknown", charge="ch_unknown")
    deliver(client, webhook_endpoint, "refund.created", stranger, at=T0)
    event = ExternalEvent.objects.get(type="refund.created")
    assert event.status == "ignored" and "no Recur payment" in event.note
    assert nothing_changed_snapshot(order) == before


def test_the_mismatch_selector_sees_a_lost_refund_row(order, payment, client, webhook_endpoint):
    obj = refund_object(payment=payment, amount=600, created=T0)
    deliver(
        client,
        webhook_endpoint,
        "charge.refunded",
        charge(payment, amount_refunded=600, refunds=[obj]),
        at=T0,
    )
    assert not payments_refund_mismatch().exists()
    Refund.objects.filter(order=order).update(status="canceled")  # as if the row were never written
    (mismatch,) = payments_refund_mismatch()
    assert (mismatch.pk, mismatch.processor_amount_refunded, mismatch.refunds_card_total) == (
        payment.pk,
        600,
        0,
    )


@pytest.mark.django_db(transaction=True)
def test_concurrent_reports_of_one_refund_record_it_once(org, customer, webhook_endpoint):
    import threading

    from django.db import connection
    from django.test import Client

    order = settled_order(org, customer)
    payment = settled_payment(order)
    Payment.objects.filter(pk=payment.pk).update(processor_charge_id=f"ch_{uuid.uuid4().hex[:24]}")
    payment.refresh_from_db()
    reports = dashboard_refund_reports(payment, amount=900)
    payloads = [stripe_events.event(t, obj, created=at) for t, obj, at in reports]
    payloads += [payloads[0], {**payloads[2], "id": payloads[2]["id"] + "_again"}]
    barrier = threading.Barrier(len(payloads))
    statuses = []

    def send(payload):
        try:
            barrier.wait(timeout=10)
            statuses.append(stripe_events.post(Client(), webhook_endpoint, payload).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(payload,)) for payload in payloads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert statuses == [200] * len(payloads)
    (refund,) = Refund.objects.filter(order=order)
    assert (refund.status, refund.amount) == ("succeeded", 900)
    assert refund_postings(order) == {"refund": 1, "refund_reversal": 0}
    assert not payments_refund_mismatch().exists()
    # A report that lost a race is retried by the sweeper; every event ends processed.
    from billing.payments.events import external_event_process

    for event in ExternalEvent.objects.exclude(status="processed"):
        external_event_process(event_id=event.pk)
    assert set(ExternalEvent.objects.values_list("status", flat=True)) == {"processed"}
    assert Refund.objects.filter(order=order).count() == 1


def test_a_refund_of_another_attempt_than_the_settling_one_is_refused(
    org, order, payment, client, webhook_endpoint
):
    """A duplicate charge for the same order paid nothing the ledger knows: its refund is flagged."""
    from billing.payments import services as payment_services

    duplicate = payment_services.payment_create(
        organization=org, customer=order.customer, reference=order.reference, amount=order.total,
        currency="usd", trigger="customer_retry",
    )  # fmt: skip
    Payment.objects.filter(pk=duplicate.pk).update(
        status="succeeded", processor_payment_id="pi_duplicate", processor_charge_id="ch_duplicate"
    )
    duplicate.refresh_from_db()
    before = nothing_changed_snapshot(order)
    deliver(client, webhook_endpoint, "refund.created", refund_object(payment=duplicate, amount=TOTAL), at=T0)
    assert "not of the payment that settled the order" in refused("refund.created").note
    full = refund_object(payment=duplicate, amount=TOTAL)
    deliver(
        client,
        webhook_endpoint,
        "charge.refunded",
        charge(duplicate, amount_refunded=TOTAL, refunds=[full]),
        at=T0,
    )
    refused("charge.refunded")
    assert nothing_changed_snapshot(order) == before


def test_a_refund_reported_before_the_payment_settled_waits_for_it(org, customer, client, webhook_endpoint):
    from billing.orders.services import Line, order_create
    from billing.payments import services as payment_services
    from billing.payments.events import external_event_process

    order = order_create(
        organization=org, customer=customer, billing_reason="purchase", currency="usd",
        lines=[Line(label="E-book", amount=2000)],
    )  # fmt: skip
    payment = payment_services.payment_create(
        organization=org, customer=customer, reference=order.reference, amount=2000, currency="usd",
        trigger="purchase",
    )  # fmt: skip
    Payment.objects.filter(pk=payment.pk).update(
        processor_payment_id="pi_early", processor_charge_id="ch_early"
    )
    payment.refresh_from_db()
    deliver(client, webhook_endpoint, "refund.created", refund_object(payment=payment, amount=500), at=T0)
    event = ExternalEvent.objects.get(type="refund.created")
    assert event.status == "failed" and "not settled yet" in event.error
    payment_services.payment_apply_snapshot(payment=payment, status="succeeded", observed_at=clock.now())
    external_event_process(event_id=event.pk)  # the retry
    event.refresh_from_db()
    assert event.status == "processed"
    assert [(r.origin, r.amount) for r in live_refunds(order)] == [("processor", 500)]
