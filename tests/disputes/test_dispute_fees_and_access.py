"""Dispute money comes from Stripe: the fee and its return on a won dispute are read from the
dispute's balance transactions (the organization's setting is the fallback for manual
payments), in the settlement currency; a won dispute can restore the subscription its
chargeback ended (``dispute_won_restores_access``)."""

import itertools
import uuid
from datetime import timedelta
from uuid import UUID

import pytest
import time_machine

from billing.disputes.models import Dispute
from billing.ledger.models import LedgerAccount
from billing.ledger.reconciliation import disputes_missing_postings
from billing.orders.models import Order
from billing.orders.services import Line, order_create
from billing.payments import services as payment_services
from billing.subscriptions.models import Subscription
from core import clock
from core.events.models import Event
from tests.disputes import events
from tests.disputes.conftest import delta, dispute_postings, ledger_view, organization_update, settled_payment
from tests.subscriptions.scenario import subscribe

Kind = LedgerAccount.Kind
CASH, TAX, MERCHANT = Kind.PROCESSOR_CASH, Kind.TAX_PAYABLE, Kind.MERCHANT_BALANCE


def stripe_paid_order(org, customer):
    """An order paid through Stripe (processor ``stripe``), settled without a processor call."""
    order = order_create(
        organization=org, customer=customer, billing_reason="purchase", currency="usd",
        lines=[Line(label="Thing", amount=10_000)], tax=2_000, tax_rate_bps=2000,
    )  # fmt: skip
    payment = payment_services.payment_create(
        organization=org, customer=customer, reference=order.reference, amount=order.total,
        currency="usd", trigger="purchase",
    )  # fmt: skip
    payment_services.payment_apply_snapshot(
        payment=payment,
        status="succeeded",
        observed_at=clock.now(),
        facts={
            "processor_payment_id": f"pi_{uuid.uuid4().hex[:24]}",
            "processor_charge_id": f"ch_{uuid.uuid4().hex[:24]}",
        },
    )
    payment.refresh_from_db()
    assert payment.processor == "stripe"
    return order, payment


def stripe_dispute(payment, status="needs_response", *, withdrawal=None, reversal=None, **fields):
    """A dispute whose balance transactions are given explicitly (Stripe's shape)."""
    obj = events.dispute(payment, status, **fields)
    obj["balance_transactions"] = [bt for bt in (withdrawal, reversal) if bt is not None]
    return obj


def withdrawal(amount=12_000, fee=1_900, currency="usd"):
    bt = events.balance_transaction(-amount, fee=fee)
    bt["currency"] = currency
    bt["fee_details"] = [
        {"amount": fee, "currency": currency, "type": "stripe_fee", "description": "Dispute fee"}
    ]
    return bt


def reversal(amount=12_000, fee=-1_900, currency="usd"):
    bt = events.balance_transaction(amount, fee=fee, category="dispute_reversal")
    bt["currency"] = currency
    bt["fee_details"] = [
        {"amount": fee, "currency": currency, "type": "stripe_fee", "description": "Dispute fee refund"}
    ]
    return bt


@pytest.fixture
def stripe_order(org, customer):
    organization_update(org, dispute_fee=1_500)  # the setting, which Stripe's figure overrides
    return stripe_paid_order(org, customer)


def won_lifecycle(payment, *, fee_back: int):
    created = stripe_dispute(payment)
    out = stripe_dispute(payment, withdrawal=withdrawal())
    review = stripe_dispute(payment, "under_review", withdrawal=withdrawal())
    won = stripe_dispute(payment, "won", withdrawal=withdrawal(), reversal=reversal(fee=-fee_back))
    return [
        events.event("created", created, at=events.T0),
        events.event("funds_withdrawn", out, at=events.T0 + 1),
        events.event("updated", review, at=events.T0 + 2),
        events.event("closed", won, at=events.T0 + 3),
        events.event("funds_reinstated", won, at=events.T0 + 4),
    ]


@pytest.mark.django_db
def test_the_fee_is_what_stripe_charged_not_the_setting(org, stripe_order, client, webhook_endpoint):
    _order, payment = stripe_order
    start = ledger_view(org)
    events.deliver(
        client, webhook_endpoint, events.event("created", stripe_dispute(payment, withdrawal=withdrawal()))
    )
    dispute = Dispute.objects.get()
    assert (dispute.fee, dispute.fee_currency, dispute.fee_source) == (1_900, "usd", "processor")
    assert delta(start, ledger_view(org)) == {
        "merchant": -(12_000 - 2_000 + 1_900),
        "tax_payable": -2_000,
        "processor_cash": -(12_000 + 1_900),
    }


@pytest.mark.django_db
@pytest.mark.parametrize("shape", ["fee_details", "net"])
def test_without_a_fee_field_the_fee_comes_from_its_details_or_net(
    org, stripe_order, client, webhook_endpoint, shape
):
    _order, payment = stripe_order
    bt = withdrawal(fee=2_100)
    del bt["fee"]
    if shape == "net":
        del bt["fee_details"]
    events.deliver(client, webhook_endpoint, events.event("created", stripe_dispute(payment, withdrawal=bt)))
    dispute = Dispute.objects.get()
    assert (dispute.fee, dispute.fee_source) == (2_100, "processor")


@pytest.mark.django_db
def test_a_fee_known_only_later_is_charged_once_it_is_known(org, stripe_order, client, webhook_endpoint):
    _order, payment = stripe_order
    # funds_withdrawn proves the withdrawal, but this snapshot lacks the balance transaction.
    events.deliver(client, webhook_endpoint, events.event("funds_withdrawn", stripe_dispute(payment)))
    dispute = Dispute.objects.get()
    assert dispute.funds_withdrawn_at is not None and (dispute.fee, dispute.fee_source) == (0, "")
    assert set(dispute_postings(dispute)) == {"dispute"}
    events.deliver(
        client, webhook_endpoint,
        events.event("updated", stripe_dispute(payment, "under_review", withdrawal=withdrawal(fee=2_000)), at=events.T0 + 1),
    )  # fmt: skip
    dispute.refresh_from_db()
    assert (dispute.fee, dispute.fee_source) == (2_000, "processor")
    assert dispute_postings(dispute)["dispute_fee"] == {MERCHANT: 2_000, CASH: -2_000}
    assert not disputes_missing_postings().exists()


@pytest.mark.django_db
def test_the_fee_is_posted_in_the_settlement_currency(org, stripe_order, client, webhook_endpoint):
    _order, payment = stripe_order
    start_eur = ledger_view(org, "eur")
    events.deliver(
        client, webhook_endpoint,
        events.event("created", stripe_dispute(payment, withdrawal=withdrawal(amount=11_000, fee=1_400, currency="eur"))),
    )  # fmt: skip
    dispute = Dispute.objects.get()
    assert (dispute.amount, dispute.currency, dispute.fee, dispute.fee_currency) == (
        12_000,
        "usd",
        1_400,
        "eur",
    )
    assert delta(start_eur, ledger_view(org, "eur")) == {
        "merchant": -1_400,
        "tax_payable": 0,
        "processor_cash": -1_400,
    }


ORDERS = [*list(itertools.permutations(range(5)))[::17], (3, 4, 0, 4, 1, 2, 0)]


@pytest.mark.parametrize("order_of_events", ORDERS, ids=str)
@pytest.mark.django_db
def test_a_won_dispute_gives_back_what_stripe_gave_back_in_any_order(
    org, stripe_order, client, webhook_endpoint, order_of_events
):
    _order, payment = stripe_order
    start = ledger_view(org)
    lifecycle = won_lifecycle(payment, fee_back=1_900)
    events.deliver(client, webhook_endpoint, *[lifecycle[i] for i in order_of_events])
    dispute = Dispute.objects.get()
    assert (dispute.status, dispute.fee, dispute.fee_refunded) == ("won", 1_900, 1_900)
    assert dispute_postings(dispute) == {
        "dispute": {CASH: -12_000, TAX: 2_000, MERCHANT: 10_000},
        "dispute_fee": {MERCHANT: 1_900, CASH: -1_900},
        "dispute_reversal": {CASH: 12_000, TAX: -2_000, MERCHANT: -10_000},
        "dispute_fee_reversal": {MERCHANT: -1_900, CASH: 1_900},
    }
    assert ledger_view(org) == start  # the ledger took back everything it took
    assert not disputes_missing_postings().exists()


@pytest.mark.django_db
def test_a_won_dispute_keeps_the_fee_when_stripe_kept_it(org, stripe_order, client, webhook_endpoint):
    _order, payment = stripe_order
    start = ledger_view(org)
    events.deliver(client, webhook_endpoint, *won_lifecycle(payment, fee_back=0))
    dispute = Dispute.objects.get()
    assert (dispute.fee, dispute.fee_refunded) == (1_900, 0) and dispute.fee_refunded_at is not None
    assert delta(start, ledger_view(org)) == {"merchant": -1_900, "tax_payable": 0, "processor_cash": -1_900}
    assert "dispute_fee_reversal" not in dispute_postings(dispute)


@pytest.mark.django_db
def test_manual_payments_fall_back_to_the_setting_and_get_it_back_when_won(
    org, paid_order, client, webhook_endpoint
):
    organization_update(org, dispute_fee=2_500)
    _order, payment = paid_order  # a manual payment: no balance transactions of its own
    start = ledger_view(org)
    events.deliver(client, webhook_endpoint, *events.lifecycle(payment, fee=999))
    dispute = Dispute.objects.get()
    assert (dispute.fee, dispute.fee_source, dispute.fee_refunded) == (2_500, "organization", 2_500)
    assert ledger_view(org) == start


# --- access after a won dispute ---------------------------------------------------------------


class _Restorations:
    """Orders whose won dispute gave access back (``dispute.closed`` with ``access_restored_at``)."""

    def _calls(self):
        events = Event.objects.filter(type="dispute.closed").order_by("pk")
        return [UUID(e.data["order_id"]) for e in events if e.data["access_restored_at"]]

    def __eq__(self, other):
        return self._calls() == other

    def __repr__(self):
        return repr(self._calls())


@pytest.fixture
def restorations():
    return _Restorations()


@pytest.fixture
def subscription(manual_org, plans):
    subscription = subscribe(manual_org, plans["basic"], billing_address={"country": "FR"})
    order = Order.objects.get(subscription=subscription)
    return subscription, order, settled_payment(f"checkout:{order.checkout_id}")


@pytest.mark.django_db(transaction=True)
def test_a_won_dispute_restores_the_subscription_it_ended(
    manual_org, subscription, client, webhook_endpoint, restorations
):
    organization_update(manual_org, dispute_won_restores_access=True)
    subscription, order, payment = subscription
    period_end = subscription.current_period_end
    created, withdrawn, updated, closed, reinstated = events.lifecycle(payment)
    events.deliver(client, webhook_endpoint, created, withdrawn, updated)
    subscription.refresh_from_db()
    assert subscription.status == "canceled"
    events.deliver(client, webhook_endpoint, closed, reinstated, closed)
    subscription.refresh_from_db()
    assert (subscription.status, subscription.ended_at, subscription.canceled_at) == ("active", None, None)
    assert subscription.benefits_revoke_at is None and subscription.current_period_end == period_end
    dispute = Dispute.objects.get()
    assert dispute.access_restored_at is not None and dispute.access_note == "access restored"
    assert restorations == [order.pk]


@pytest.mark.django_db(transaction=True)
def test_without_the_setting_a_won_dispute_leaves_it_ended(
    manual_org, subscription, client, webhook_endpoint
):
    subscription, _order, payment = subscription
    events.deliver(client, webhook_endpoint, *events.lifecycle(payment))
    subscription.refresh_from_db()
    assert subscription.status == "canceled"
    assert Dispute.objects.get().access_restored_at is None


@pytest.mark.django_db(transaction=True)
def test_a_won_dispute_after_the_paid_period_does_not_restore(
    manual_org, subscription, client, webhook_endpoint, restorations
):
    organization_update(manual_org, dispute_won_restores_access=True)
    subscription, order, payment = subscription
    created, withdrawn, _updated, closed, reinstated = events.lifecycle(payment)
    events.deliver(client, webhook_endpoint, created, withdrawn)
    with time_machine.travel(subscription.current_period_end + timedelta(days=1)):
        events.deliver(client, webhook_endpoint, closed, reinstated)
    subscription.refresh_from_db()
    assert subscription.status == "canceled"
    dispute = Dispute.objects.get()
    assert dispute.access_note == "subscription not restored: The period it was paid for is over."
    assert restorations == [order.pk]  # benefits other than the subscription are the hooks' call


@pytest.mark.django_db(transaction=True)
def test_a_subscription_ended_before_the_dispute_is_not_restored(
    manual_org, subscription, client, webhook_endpoint
):
    from billing.subscriptions.services import subscription_revoke

    organization_update(manual_org, dispute_won_restores_access=True)
    subscription, _order, payment = subscription
    subscription_revoke(subscription=subscription, reason="customer left")
    events.deliver(client, webhook_endpoint, *events.lifecycle(payment))
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.CANCELED
    assert subscription.cancellation_comment == "customer left"


@pytest.mark.django_db
def test_the_setting_is_in_the_api(org, api):
    response = api.patch("/v1/organization", {"dispute_won_restores_access": True}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["dispute_won_restores_access"] is True
    org.refresh_from_db()
    assert org.dispute_won_restores_access is True
    bad = api.patch("/v1/organization", {"dispute_won_restores_access": "perhaps"}, format="json")
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "dispute_won_restores_access"
