"""Disputes end to end: signed charge.dispute.* events posted to the webhook endpoint move
the dispute, the ledger and the customer's access exactly once, whatever the delivery order."""

import threading
from uuid import UUID

import pytest
from django.db import connection
from django.test import Client

from billing.checkout import services as checkout_services
from billing.disputes.models import Dispute
from billing.ledger.models import LedgerAccount, LedgerTransaction
from billing.orders.models import Order
from billing.payments.models import ExternalEvent
from billing.subscriptions.models import Subscription
from billing.subscriptions.services import subscription_revoke
from core.events.models import Event
from tests.disputes import events
from tests.disputes.conftest import (
    delta,
    dispute_postings,
    ledger_view,
    organization_update,
    settled_payment,
)
from tests.subscriptions.scenario import subscribe

Kind = LedgerAccount.Kind
CASH, TAX, MERCHANT = Kind.PROCESSOR_CASH, Kind.TAX_PAYABLE, Kind.MERCHANT_BALANCE

STATE_FIELDS = (
    "status",
    "reason",
    "amount",
    "currency",
    "tax_amount",
    "fee",
    "evidence_due_by",
    "funds_withdrawn_at",
    "funds_reinstated_at",
    "closed_at",
    "access_revoked_at",
    "processor_state_at",
    "snapshot",
)


def state(dispute: Dispute) -> dict:
    dispute.refresh_from_db()
    return {name: getattr(dispute, name) for name in STATE_FIELDS}


class _Revocations:
    """(order id, dispute id) of each dispute event that revoked access, read when compared."""

    def _calls(self):
        # The event at which access_revoked_at first appears (later updates still carry it).
        calls, revoked = [], set()
        for e in Event.objects.filter(type__startswith="dispute.").order_by("pk"):
            if e.data["access_revoked_at"] and e.object_id not in revoked:
                revoked.add(e.object_id)
                calls.append((UUID(e.data["order_id"]), UUID(e.object_id)))
        return calls

    def __eq__(self, other):
        return self._calls() == other

    def __repr__(self):
        return repr(self._calls())


@pytest.fixture
def revocations():
    """The dispute events benefits revoke on (once per chargeback that revoked access)."""
    return _Revocations()


@pytest.fixture
def taxed_subscription(manual_org, plans):
    """A monthly subscription of 30.00 + 20% French VAT, paid (manual processor)."""
    subscription = subscribe(manual_org, plans["basic"], billing_address={"country": "FR"})
    order = Order.objects.get(subscription=subscription)
    assert (order.status, order.total, order.tax) == ("paid", 3600, 600)
    return subscription, order, settled_payment(f"checkout:{order.checkout_id}")


# --- the whole story, through localstripe --------------------------------------------------


@pytest.mark.localstripe
@pytest.mark.django_db(transaction=True)
def test_chargeback_withdrawn_then_won(
    org, make_product, stripe_client, client, webhook_endpoint, api, revocations
):
    product = make_product(
        "Team plan", recurring="month", prices=[{"currency": "usd", "type": "fixed", "amount": 3000}]
    )
    checkout = checkout_services.checkout_create(
        organization=org,
        product_id=product.pk,
        customer_email="buyer@example.com",
        billing_address={"country": "FR"},
    )
    card = stripe_client.PaymentMethod.create(
        type="card", card={"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}
    )
    checkout_services.checkout_confirm(checkout=checkout, payment_method_id=card.id)
    order = Order.objects.get(checkout=checkout)
    assert (order.status, order.total, order.tax) == ("paid", 3600, 600)
    subscription = order.subscription
    assert subscription.status == Subscription.Status.ACTIVE
    payment = settled_payment(checkout.reference)
    assert payment.processor_payment_id.startswith("pi_")
    assert payment.processor_charge_id.startswith("ch_")

    created, withdrawn, updated, closed, reinstated = events.lifecycle(payment)
    start = ledger_view(org)

    # A new chargeback: recorded, access revoked at once; no money yet.
    events.deliver(client, webhook_endpoint, created)
    dispute = Dispute.objects.get()
    assert (dispute.status, dispute.reason, dispute.amount, dispute.currency) == (
        "needs_response",
        "fraudulent",
        3600,
        "usd",
    )
    assert (dispute.order, dispute.payment, dispute.customer, dispute.organization) == (
        order,
        payment,
        order.customer,
        org,
    )
    assert dispute.processor_charge_id == payment.processor_charge_id
    assert dispute.evidence_due_by is not None
    assert dispute.funds_withdrawn_at is None
    assert ledger_view(org) == start
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.CANCELED and subscription.ended_at is not None
    assert dispute.access_revoked_at is not None
    assert revocations == [(order.pk, dispute.pk)]

    # Funds withdrawn: the amount less its tax from the merchant, the tax from tax payable,
    # the fee from the merchant; the processor holds amount + fee less.
    events.deliver(client, webhook_endpoint, withdrawn)
    dispute.refresh_from_db()
    assert (dispute.tax_amount, dispute.fee) == (600, 1500)
    assert dispute.funds_withdrawn_at is not None
    assert delta(start, ledger_view(org)) == {
        "merchant": -(3600 - 600 + 1500),
        "tax_payable": -600,
        "processor_cash": -(3600 + 1500),
    }
    assert dispute_postings(dispute) == {
        "dispute": {CASH: -3600, TAX: 600, MERCHANT: 3000},
        "dispute_fee": {MERCHANT: 1500, CASH: -1500},
    }

    events.deliver(client, webhook_endpoint, updated)
    dispute.refresh_from_db()
    assert dispute.status == "under_review" and dispute.closed_at is None

    # Won: the amount comes back, the fee stays.
    events.deliver(client, webhook_endpoint, closed, reinstated)
    dispute.refresh_from_db()
    assert dispute.status == "won"
    assert dispute.closed_at is not None and dispute.funds_reinstated_at is not None
    assert delta(start, ledger_view(org)) == {"merchant": -1500, "tax_payable": 0, "processor_cash": -1500}
    assert dispute_postings(dispute)["dispute_reversal"] == {CASH: 3600, TAX: -600, MERCHANT: -3000}

    # Every event again, as redeliveries and as new events with the same snapshots: nothing moves.
    final = state(dispute)
    all_events = [created, withdrawn, updated, closed, reinstated]
    events.deliver(client, webhook_endpoint, *all_events)
    events.deliver(client, webhook_endpoint, *[{**e, "id": e["id"] + "_again"} for e in all_events])
    assert state(dispute) == final
    assert Dispute.objects.count() == 1
    assert LedgerTransaction.objects.filter(dispute=dispute).count() == 3
    assert revocations == [(order.pk, dispute.pk)]
    assert set(ExternalEvent.objects.values_list("status", flat=True)) == {"processed"}
    assert ExternalEvent.objects.count() == 10

    body = api.get(f"/v1/disputes/{dispute.pk}").json()
    assert body["status"] == "won" and body["order_id"] == str(order.pk)
    assert (body["amount"], body["tax_amount"], body["fee"]) == (3600, 600, 1500)


# --- money --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_lost_dispute_withdrawn_at_creation_moves_nothing_more(org, paid_order, client, webhook_endpoint):
    _order, payment = paid_order  # 100.00 + 20.00 tax
    start = ledger_view(org)
    events.deliver(client, webhook_endpoint, events.event("created", events.dispute(payment, withdrawn=True)))
    dispute = Dispute.objects.get()
    assert dispute.funds_withdrawn_at is not None
    withdrawn = ledger_view(org)
    assert delta(start, withdrawn) == {
        "merchant": -(12_000 - 2_000 + 1_500),
        "tax_payable": -2_000,
        "processor_cash": -(12_000 + 1_500),
    }

    events.deliver(
        client,
        webhook_endpoint,
        events.event("updated", events.dispute(payment, "under_review", withdrawn=True), at=events.T0 + 1),
        events.event("closed", events.dispute(payment, "lost", withdrawn=True), at=events.T0 + 2),
    )
    dispute.refresh_from_db()
    assert dispute.status == "lost" and dispute.closed_at is not None
    assert dispute.funds_reinstated_at is None
    assert ledger_view(org) == withdrawn
    assert set(dispute_postings(dispute)) == {"dispute", "dispute_fee"}
    assert dispute.access_revoked_at is not None  # no subscription: only the hooks had work


@pytest.mark.django_db
def test_partial_dispute_takes_its_share_of_the_tax_and_the_fee_setting(
    org, paid_order, client, webhook_endpoint
):
    organization_update(org, dispute_fee=0)
    _order, payment = paid_order
    start = ledger_view(org)
    snapshot = events.dispute(payment, amount=6_000, withdrawn=True, fee=0)
    events.deliver(client, webhook_endpoint, events.event("created", snapshot))
    dispute = Dispute.objects.get()
    assert (dispute.amount, dispute.tax_amount, dispute.fee) == (6_000, 1_000, 0)
    assert delta(start, ledger_view(org)) == {
        "merchant": -5_000,
        "tax_payable": -1_000,
        "processor_cash": -6_000,
    }
    assert set(dispute_postings(dispute)) == {"dispute"}  # no fee, no fee posting


@pytest.mark.django_db
def test_an_inquiry_moves_no_money_and_keeps_access(org, paid_order, client, webhook_endpoint, revocations):
    _order, payment = paid_order
    start = ledger_view(org)
    events.deliver(
        client,
        webhook_endpoint,
        events.event("created", events.dispute(payment, "warning_needs_response")),
        events.event("updated", events.dispute(payment, "warning_under_review"), at=events.T0 + 1),
        events.event("closed", events.dispute(payment, "warning_closed"), at=events.T0 + 2),
    )
    dispute = Dispute.objects.get()
    assert dispute.status == "warning_closed" and dispute.closed_at is not None
    assert (dispute.funds_withdrawn_at, dispute.access_revoked_at, dispute.fee) == (None, None, 0)
    assert ledger_view(org) == start
    assert not LedgerTransaction.objects.filter(dispute=dispute).exists()
    assert revocations == []


@pytest.mark.django_db
def test_an_inquiry_that_escalates_is_a_new_chargeback(
    org, paid_order, client, webhook_endpoint, revocations
):
    order, payment = paid_order
    events.deliver(
        client, webhook_endpoint, events.event("created", events.dispute(payment, "warning_needs_response"))
    )
    assert revocations == []
    events.deliver(
        client,
        webhook_endpoint,
        events.event("funds_withdrawn", events.dispute(payment, withdrawn=True), at=events.T0 + 5),
    )
    dispute = Dispute.objects.get()
    assert dispute.status == "needs_response" and dispute.funds_withdrawn_at is not None
    assert revocations == [(order.pk, dispute.pk)]


# --- access -------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_setting_off_keeps_the_subscription(
    manual_org, taxed_subscription, client, webhook_endpoint, revocations
):
    organization_update(manual_org, dispute_revokes_access=False)
    subscription, _order, payment = taxed_subscription
    events.deliver(client, webhook_endpoint, *events.lifecycle(payment, outcome="lost"))
    dispute = Dispute.objects.get()
    assert dispute.status == "lost" and dispute.access_revoked_at is None
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.ACTIVE and subscription.ended_at is None
    assert revocations == []
    assert set(dispute_postings(dispute)) == {"dispute", "dispute_fee"}  # money moves anyway


@pytest.mark.django_db(transaction=True)
def test_a_subscription_that_already_ended_is_left_alone(
    taxed_subscription, client, webhook_endpoint, revocations
):
    subscription, order, payment = taxed_subscription
    subscription = subscription_revoke(subscription=subscription, reason="customer left")
    ended_at = subscription.ended_at
    events.deliver(client, webhook_endpoint, events.event("created", events.dispute(payment)))
    dispute = Dispute.objects.get()
    assert dispute.access_revoked_at is not None
    subscription.refresh_from_db()
    assert (subscription.ended_at, subscription.cancellation_comment) == (ended_at, "customer left")
    assert revocations == [(order.pk, dispute.pk)]
    assert ExternalEvent.objects.get().status == "processed"


# --- any order, any number of times ---------------------------------------------------------

ORDERS = {
    "in order": [0, 1, 2, 3, 4],
    "reversed": [4, 3, 2, 1, 0],
    "withdrawn before created, closed before updated": [1, 0, 3, 2, 4],
    "shuffled with duplicates": [2, 4, 0, 4, 1, 3, 0, 1],
}


@pytest.mark.parametrize("order_of_events", ORDERS.values(), ids=ORDERS.keys())
@pytest.mark.django_db(transaction=True)
def test_any_delivery_order_converges(
    manual_org, taxed_subscription, client, webhook_endpoint, revocations, order_of_events
):
    subscription, order, payment = taxed_subscription
    lifecycle = events.lifecycle(payment)
    start = ledger_view(manual_org)
    events.deliver(client, webhook_endpoint, *[lifecycle[i] for i in order_of_events])

    dispute = Dispute.objects.get()
    assert dispute.status == "won"
    assert dispute.processor_state_at.timestamp() == events.T0 + 4
    assert dispute.closed_at.timestamp() == events.T0 + 3  # the first snapshot that said so
    assert dispute.snapshot == lifecycle[4]["data"]["object"]
    assert (dispute.tax_amount, dispute.fee) == (600, 1500)
    assert dispute.funds_withdrawn_at is not None and dispute.funds_reinstated_at is not None
    assert dispute_postings(dispute) == {
        "dispute": {CASH: -3600, TAX: 600, MERCHANT: 3000},
        "dispute_fee": {MERCHANT: 1500, CASH: -1500},
        "dispute_reversal": {CASH: 3600, TAX: -600, MERCHANT: -3000},
        # a manual payment: the organization's fee stands in for Stripe's and comes back when won
        "dispute_fee_reversal": {MERCHANT: -1500, CASH: 1500},
    }
    assert delta(start, ledger_view(manual_org)) == {"merchant": 0, "tax_payable": 0, "processor_cash": 0}
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.CANCELED
    assert revocations == [(order.pk, dispute.pk)]
    assert not ExternalEvent.objects.exclude(status="processed").exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_apply_once(manual_org, taxed_subscription, webhook_endpoint, revocations):
    _subscription, order, payment = taxed_subscription
    created, withdrawn, updated, closed = events.lifecycle(payment, outcome="lost")
    again = {**created, "id": created["id"] + "_again"}
    payloads = [created, withdrawn, updated, closed, again, created, withdrawn]
    barrier = threading.Barrier(len(payloads))
    statuses = []

    def send(payload):
        try:
            barrier.wait()
            statuses.append(events.stripe_events.post(Client(), webhook_endpoint, payload).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(payload,)) for payload in payloads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert statuses == [200] * len(payloads)
    dispute = Dispute.objects.get()
    assert dispute.status == "lost"
    assert set(dispute_postings(dispute)) == {"dispute", "dispute_fee"}
    assert revocations == [(order.pk, dispute.pk)]
    assert sorted(ExternalEvent.objects.values_list("status", flat=True)) == ["processed"] * 5


@pytest.mark.django_db
def test_a_disputed_order_cannot_be_refunded_until_the_dispute_is_won(
    org, paid_order, client, webhook_endpoint
):
    from billing.refunds.models import Refund
    from billing.refunds.services import order_refundable, refund_create
    from core.errors import Conflict

    order, payment = paid_order
    events.deliver(client, webhook_endpoint, events.event("created", events.dispute(payment, withdrawn=True)))
    before = ledger_view(org)
    with pytest.raises(Conflict) as refused:
        refund_create(order=order, amount=1_000, reason="requested_by_customer")
    assert refused.value.code == "order_disputed"
    order.refresh_from_db()
    assert (order.status, order.refunded_amount, Refund.objects.count()) == ("paid", 0, 0)
    assert ledger_view(org) == before and order_refundable(order) == 0

    events.deliver(
        client,
        webhook_endpoint,
        events.event(
            "closed", events.dispute(payment, "won", withdrawn=True, reinstated=True), at=events.T0 + 1
        ),
    )
    assert order_refundable(order) == order.total
    refund = refund_create(order=order, amount=1_000, reason="requested_by_customer")
    assert refund.status == "pending" and refund.amount == 1_000
