"""Amounts below the processor's minimum charge never strand an order: the order is paid
without a charge, the amount goes on the customer's balance (below zero: owed) and the next
order collects it, as Stripe does with invoices under its minimum. The ledger balances at
every step (the database refuses otherwise) and the jobs converge."""

from datetime import timedelta

import pytest
import time_machine

from billing.catalog import services as catalog
from billing.ledger.models import LedgerTransaction
from billing.ledger.reconciliation import reconcile
from billing.ledger.selectors import wallet_balance
from billing.ledger.wallet import applicable_amount, wallet_adjust, wallet_available
from billing.money import chargeable_part
from billing.orders.models import Order
from billing.payments.models import Payment
from billing.refunds.services import refund_create
from billing.subscriptions import dunning, renewals, services
from tests.subscriptions.scenario import START, price_of, subscribe

pytestmark = pytest.mark.django_db(transaction=True)

HALF = START + timedelta(days=15)  # r = 1/2 of April


def lines(ledger_tx) -> dict[str, int]:
    return {e.account.kind: e.amount for e in ledger_tx.entries.select_related("account")}


def renew_converged(subscription):
    with time_machine.travel(subscription.current_period_end + timedelta(seconds=1), tick=False):
        renewals.renewals_run()
        dunning.dunning_run()
        counts = (Order.objects.count(), Payment.objects.count(), LedgerTransaction.objects.count())
        assert renewals.renewals_run().cycled == 0
        assert dunning.dunning_run() == 0
        assert (Order.objects.count(), Payment.objects.count(), LedgerTransaction.objects.count()) == counts
    subscription.refresh_from_db()
    return subscription


def test_the_chargeable_part_of_an_amount():
    assert chargeable_part(49, "usd") == 0
    assert chargeable_part(50, "usd") == 50
    assert chargeable_part(29, "gbp") == 0
    assert chargeable_part(12345, "isk") == 12300  # whole krónur only
    assert chargeable_part(1000, "bhd") == 1000  # no minimum on record
    assert chargeable_part(1005, "bhd") == 1000  # three-decimal: the last digit 0
    assert chargeable_part(0, "usd") == chargeable_part(-10, "usd") == 0


def test_an_owed_balance_is_collected_with_the_next_order():
    assert applicable_amount(total=3000, available=-30, currency="usd") == -30  # due 3030
    assert applicable_amount(total=0, available=-30, currency="usd") == 0  # nothing to add it to


@pytest.fixture
def small_step(manual_org, make_product):
    """Two plans 60 cents apart: a change half-way through April is 30 cents."""

    def product(name, amount):
        return make_product(
            name, recurring="month", prices=[{"currency": "usd", "type": "fixed", "amount": amount}]
        )

    return product("Lite", 3000), product("Lite Plus", 3060)


def test_a_small_upgrade_invoice_is_paid_and_carried_to_the_next_order(manual_org, small_step, api):
    lite, plus = small_step
    sub = subscribe(manual_org, lite)
    body = {"price_id": str(price_of(plus).pk), "proration_behavior": "invoice"}

    with time_machine.travel(HALF, tick=False):
        preview = api.post(f"/v1/subscriptions/{sub.pk}/change/preview", body, format="json").json()
        response = api.post(f"/v1/subscriptions/{sub.pk}/change", body, format="json")

    assert response.status_code == 200, response.json()
    assert (preview["amount_due_now"], preview["amount_carried_forward"]) == (0, 30)
    assert (preview["invoice"]["total"], preview["invoice"]["due"], preview["invoice"]["carried_forward"]) == (
        30, 0, 30,
    )  # fmt: skip
    order = Order.objects.get(billing_reason="subscription_update")
    assert (order.status, order.total, order.applied_balance, order.carried_forward, order.due) == (
        "paid", 30, 30, 30, 0,
    )  # fmt: skip
    assert response.json()["order"]["carried_forward"] == 30
    assert order.invoice_number
    assert not Payment.objects.filter(reference=order.reference).exists()  # never sent to the processor
    assert lines(LedgerTransaction.objects.get(order=order, type="payment")) == {
        "customer_wallet": 30,  # the customer owes it
        "merchant_balance": -30,
    }
    assert (wallet_balance(sub.customer, "usd"), wallet_available(sub.customer, "usd")) == (-30, 0)

    sub = renew_converged(sub)

    renewal = Order.objects.get(subscription=sub, billing_reason="subscription_cycle")
    assert (renewal.total, renewal.applied_balance, renewal.due, renewal.status) == (3060, -30, 3090, "paid")
    assert Payment.objects.get(reference=renewal.reference).amount == 3090
    assert lines(LedgerTransaction.objects.get(order=renewal, type="payment"))["customer_wallet"] == -30
    assert wallet_balance(sub.customer, "usd") == 0
    assert reconcile() == []  # every order posted, every balance equal to its entries


def test_a_renewal_below_the_minimum_is_paid_in_bulk_and_collected_later(manual_org, plans):
    catalog.discount_create(
        organization=manual_org, name="Almost free", code="ALMOST", type="percentage", basis_points=9900,
        duration="forever",
    )  # fmt: skip
    subs = [subscribe(manual_org, plans["basic"]) for _ in range(2)]
    for sub in subs:  # from the next order on: 30 cents a month
        services.subscription_discount_change(subscription=sub, discount_code="ALMOST")
    customer = subs[0].customer
    assert Order.objects.filter(customer=customer).count() == 2  # the checkouts

    renew_converged(subs[0])  # both renew in one chunk: 30 cents each, below the minimum

    may = Order.objects.filter(customer=customer, billing_reason="subscription_cycle")
    assert sorted((o.status, o.total, o.carried_forward, o.due) for o in may) == [("paid", 30, 30, 0)] * 2
    assert not Payment.objects.filter(reference__in=[o.reference for o in may]).exists()
    assert wallet_balance(customer, "usd") == -60

    renew_converged(subs[0])  # June: the first order collects the 60 owed: 90, charged

    june = Order.objects.filter(customer=customer, billing_reason="subscription_cycle").order_by(
        "-period_start"
    )[:2]
    charged = [o for o in june if o.applied_balance < 0]
    assert [(o.total, o.applied_balance, o.due, o.status) for o in charged] == [(30, -60, 90, "paid")]
    assert Payment.objects.get(reference=charged[0].reference).amount == 90
    assert wallet_balance(customer, "usd") == -30  # the other June order carried its own 30
    assert reconcile() == []


def test_a_small_renewal_with_a_wallet_credit_uses_it_and_carries_the_rest(manual_org, plans, operator):
    catalog.discount_create(
        organization=manual_org, name="Almost free", code="ALMOST", type="percentage", basis_points=9900,
        duration="forever",
    )  # fmt: skip
    sub = subscribe(manual_org, plans["basic"])
    services.subscription_discount_change(subscription=sub, discount_code="ALMOST")  # renews at 30 cents
    wallet_adjust(customer=sub.customer, amount=10, currency="usd", reason="Goodwill", actor=operator)

    renew_converged(sub)

    order = Order.objects.get(subscription=sub, billing_reason="subscription_cycle")
    assert (order.status, order.total, order.applied_balance, order.carried_forward, order.due) == (
        "paid", 30, 30, 30, 0,
    )  # fmt: skip
    assert wallet_balance(sub.customer, "usd") == -20  # 10 spent, 20 owed


def test_refunding_a_carried_order_clears_what_the_customer_owes(manual_org, small_step):
    lite, plus = small_step
    sub = subscribe(manual_org, lite)
    with time_machine.travel(HALF, tick=False):
        _, order = services.subscription_change(
            subscription=sub, price_id=price_of(plus).pk, proration_behavior="invoice"
        )
        refund = refund_create(order=order, amount=None, reason="requested_by_customer")

    assert (refund.card_amount, refund.wallet_amount, refund.status) == (0, 30, "succeeded")
    assert wallet_balance(sub.customer, "usd") == 0


def test_a_small_prorated_change_rides_on_the_renewal(manual_org, small_step):
    lite, plus = small_step
    sub = subscribe(manual_org, lite)
    with time_machine.travel(HALF, tick=False):
        plan = services.subscription_change_preview(
            subscription=sub, price_id=price_of(plus).pk, proration_behavior="prorate"
        )
        services.subscription_change(
            subscription=sub, price_id=price_of(plus).pk, proration_behavior="prorate"
        )

    assert (plan.next_order_adjustment, plan.amount_due_now, plan.amount_carried_forward) == (30, 0, 0)
    sub = renew_converged(sub)
    renewal = Order.objects.get(subscription=sub, billing_reason="subscription_cycle")
    assert (renewal.total, renewal.due, renewal.status) == (3090, 3090, "paid")
