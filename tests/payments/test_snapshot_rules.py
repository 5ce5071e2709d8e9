"""A payment Stripe took is never dropped: snapshots move payments forward along their state
machine whatever their timestamps, same-rank ones by time at one-second resolution, and a
success that took another amount or currency is held for an operator, not paid in full."""

import uuid
from datetime import datetime, timedelta

import pytest
import time_machine

from billing.checkout import services as checkout_services
from billing.ledger.models import LedgerTransaction
from billing.orders.models import Order
from billing.orders.services import Line, order_create
from billing.payments import services
from billing.payments.models import ExternalEvent, Payment
from billing.payments.selectors import reference_settled_payment
from billing.subscriptions import dunning
from tests.payments import stripe_events

pytestmark = pytest.mark.django_db

S = Payment.Status
# Our clock when the synchronous answer was recorded: mid-second, as in production.
SYNC_AT = datetime.fromisoformat("2027-03-01T10:00:00.600000+00:00")
STRIPE_SECOND = int(SYNC_AT.replace(microsecond=0).timestamp())


@pytest.fixture
def order(org, customer):
    return order_create(
        organization=org,
        customer=customer,
        billing_reason="purchase",
        currency="usd",
        lines=[Line(label="E-book", amount=2000)],
    )


@pytest.fixture
def payment(order, make_payment):
    payment = make_payment(reference=order.reference, amount=order.due, trigger="cycle")
    Payment.objects.filter(pk=payment.pk).update(processor_payment_id=f"pi_{uuid.uuid4().hex[:24]}")
    payment.refresh_from_db()
    return payment


def snapshot(payment, status, at, **kwargs):
    return services.payment_apply_snapshot(payment=payment, status=status, observed_at=at, **kwargs)


def deliver(client, endpoint, *payloads):
    for payload in payloads:
        assert stripe_events.post(client, endpoint, payload).status_code == 200


@pytest.mark.parametrize("seconds_after", [0, -1, -30])
def test_a_success_stamped_in_the_second_of_the_synchronous_requires_action_settles_the_order(
    client, webhook_endpoint, order, payment, seconds_after
):
    """The issue's case: whole seconds (the event) against microseconds (our clock)."""
    with time_machine.travel(SYNC_AT, tick=False):
        snapshot(payment, S.REQUIRES_ACTION, SYNC_AT)
        event = stripe_events.event(
            "payment_intent.succeeded",
            stripe_events.payment_intent(payment),
            created=STRIPE_SECOND + seconds_after,
        )
        deliver(client, webhook_endpoint, event)
    payment.refresh_from_db()
    order.refresh_from_db()
    assert payment.status == S.SUCCEEDED
    assert order.status == Order.Status.PAID
    assert ExternalEvent.objects.get().status == ExternalEvent.Status.PROCESSED
    assert LedgerTransaction.objects.filter(idempotency_key=f"order:{order.pk}:paid").count() == 1


@pytest.mark.parametrize(
    ("first", "then", "expected"),
    [
        (S.PENDING, S.PROCESSING, S.PROCESSING),
        (S.REQUIRES_ACTION, S.FAILED, S.FAILED),
        (S.PROCESSING, S.SUCCEEDED, S.SUCCEEDED),
        (S.FAILED, S.SUCCEEDED, S.SUCCEEDED),  # the same intent retried with another card
        (S.REQUIRES_ACTION, S.CANCELED, S.CANCELED),
    ],
)
def test_a_snapshot_further_along_moves_forward_even_when_stamped_earlier(payment, first, then, expected):
    if first != S.PENDING:
        snapshot(payment, first, SYNC_AT)
    assert snapshot(payment, then, SYNC_AT - timedelta(minutes=2)).status == expected


@pytest.mark.parametrize("final", [S.SUCCEEDED, S.CANCELED])
@pytest.mark.parametrize(
    "later", [S.PENDING, S.REQUIRES_ACTION, S.PROCESSING, S.FAILED, S.SUCCEEDED, S.CANCELED]
)
def test_final_states_never_move(payment, final, later):
    snapshot(payment, final, SYNC_AT)
    assert snapshot(payment, later, SYNC_AT + timedelta(hours=1)).status == final


@pytest.mark.parametrize("later", [S.PENDING, S.REQUIRES_ACTION, S.PROCESSING])
def test_a_snapshot_behind_never_moves_back_whatever_its_time(payment, later):
    snapshot(payment, S.FAILED, SYNC_AT)
    assert snapshot(payment, later, SYNC_AT + timedelta(hours=1)).status == S.FAILED


def test_same_rank_snapshots_are_ordered_by_time_at_one_second_resolution(payment):
    snapshot(payment, S.REQUIRES_ACTION, SYNC_AT)  # 10:00:00.6
    # Same second as what is recorded: not newer (Stripe's clock has no finer grain).
    assert snapshot(payment, S.PROCESSING, SYNC_AT.replace(microsecond=0)).status == S.REQUIRES_ACTION
    assert snapshot(payment, S.PROCESSING, SYNC_AT + timedelta(seconds=1)).status == S.PROCESSING
    # An older one of the same rank stays behind.
    assert snapshot(payment, S.REQUIRES_ACTION, SYNC_AT).status == S.PROCESSING
    payment.refresh_from_db()
    assert payment.processor_state_at == (SYNC_AT + timedelta(seconds=1)).replace(microsecond=0)


def test_a_cancellation_ends_the_attempt_like_a_failure_and_only_once(order, make_payment):
    first = make_payment(reference=order.reference, amount=order.due, trigger="cycle")
    with time_machine.travel(SYNC_AT, tick=False):
        snapshot(first, S.REQUIRES_ACTION, SYNC_AT)
        snapshot(first, S.CANCELED, SYNC_AT + timedelta(seconds=5))
    order.refresh_from_db()
    # The order learnt it: dunning schedules the next attempt.
    assert (order.dunning_attempts, order.next_payment_attempt_at) == (0, SYNC_AT + timedelta(days=2))

    second = make_payment(reference=order.reference, amount=order.due, trigger="dunning_retry")
    with time_machine.travel(SYNC_AT + timedelta(days=2), tick=False):
        snapshot(second, S.FAILED, SYNC_AT + timedelta(days=2))
        snapshot(second, S.CANCELED, SYNC_AT + timedelta(days=2, seconds=5))  # failure already told
    order.refresh_from_db()
    assert order.dunning_attempts == 1


# --- amount or currency differing from the payment -----------------------------------------


@pytest.mark.parametrize(
    ("fields", "why"),
    [({"amount": 1500, "amount_received": 1500}, "$15.00"), ({"currency": "eur"}, "€20.00")],
)
def test_a_success_that_took_another_amount_or_currency_is_held_not_paid(
    client, webhook_endpoint, order, payment, fields, why
):
    intent = {**stripe_events.payment_intent(payment), **fields}
    deliver(client, webhook_endpoint, stripe_events.event("payment_intent.succeeded", intent))
    payment.refresh_from_db()
    order.refresh_from_db()
    assert payment.status == S.SUCCEEDED  # the processor took money: that is on record
    assert why in payment.hold_reason and "$20.00" in payment.hold_reason
    assert order.status == Order.Status.PENDING and order.paid_at is None
    assert order.payment_hold == payment.hold_reason
    assert order.next_payment_attempt_at is None
    assert not LedgerTransaction.objects.filter(idempotency_key=f"order:{order.pk}:paid").exists()
    assert reference_settled_payment(order.reference) is None
    # Collection stops: no second charge on top of the held one.
    assert dunning.order_payment_collect(order_id=order.pk, trigger="operator_retry") is None
    assert Payment.objects.filter(reference=order.reference).count() == 1


def test_a_matching_amount_received_settles_normally(client, webhook_endpoint, order, payment):
    intent = {**stripe_events.payment_intent(payment), "amount_received": payment.amount}
    deliver(client, webhook_endpoint, stripe_events.event("payment_intent.succeeded", intent))
    order.refresh_from_db()
    assert order.status == Order.Status.PAID and order.payment_hold == ""


def test_a_charge_event_with_another_amount_is_held_too(client, webhook_endpoint, order, payment):
    charge = stripe_events.charge(payment, amount=900, amount_captured=900)
    deliver(client, webhook_endpoint, stripe_events.event("charge.succeeded", charge))
    payment.refresh_from_db()
    order.refresh_from_db()
    assert payment.hold_reason and order.payment_hold and order.status == Order.Status.PENDING


def test_a_held_checkout_payment_keeps_the_checkout_from_being_paid_again(org, make_product):
    product = make_product("Ebook")
    with time_machine.travel(SYNC_AT, tick=False):
        checkout = checkout_services.checkout_create(
            organization=org, product_id=product.pk, customer_email="c@example.com"
        )
        checkout = checkout_services._confirm_begin(checkout=checkout, payment_method_id="pm_x", changes={})
        payment = services.payment_create(
            organization=org,
            customer=checkout.customer,
            reference=checkout.reference,
            amount=checkout.total,
            currency=checkout.currency,
            trigger="purchase",
        )
        snapshot(payment, S.SUCCEEDED, SYNC_AT, amount_received=checkout.total - 100)
    with time_machine.travel(SYNC_AT + timedelta(hours=1), tick=False):
        assert checkout_services.checkouts_expire()["reopened"] == 0
    checkout.refresh_from_db()
    assert checkout.status == checkout.Status.CONFIRMED  # not reopened for a second payment
    assert not Order.objects.filter(checkout=checkout).exists()


# --- snapshots that are not about a payment we can tell ------------------------------------


@pytest.mark.parametrize("case", ["metadata_of_another", "unknown_metadata", "intent_of_another"])
def test_a_snapshot_whose_ids_disagree_is_stored_flagged_and_applied_to_nobody(
    client, webhook_endpoint, make_payment, order, payment, case
):
    other = make_payment(reference="order:other")
    Payment.objects.filter(pk=other.pk).update(processor_payment_id="pi_other")
    intent = stripe_events.payment_intent(payment)
    if case == "metadata_of_another":  # our id says `other`, the intent id says `payment`
        intent["metadata"] = {"recur_payment_id": str(other.pk)}
    elif case == "unknown_metadata":
        intent["metadata"] = {"recur_payment_id": str(uuid.uuid4())}
    else:  # names `payment`, but `payment` belongs to another intent
        intent["id"] = "pi_unrelated"
    deliver(client, webhook_endpoint, stripe_events.event("payment_intent.succeeded", intent))
    event = ExternalEvent.objects.get()
    assert event.status == ExternalEvent.Status.IGNORED
    assert event.note.startswith("not applied")
    assert set(Payment.objects.values_list("status", flat=True)) == {S.PENDING}
    order.refresh_from_db()
    assert order.status == Order.Status.PENDING
