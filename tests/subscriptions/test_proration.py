"""Proration follows what was actually charged: worked figures.

The reference is Stripe's documented rule (and Polar's): a change credits the unused time
of what the customer paid for the current period (after the subscription's discount) and
debits the new plan's remaining time with the discount that applies to it. April 2027 has
30 days; a change 15 days in leaves r = 1/2 exactly.

Every test takes the preview first and checks that the change bills exactly that, then
runs the renewal and dunning jobs twice (the second run creates nothing: convergence).
"""

from datetime import timedelta
from fractions import Fraction

import pytest
import time_machine

from billing.catalog import services as catalog
from billing.ledger.models import LedgerTransaction
from billing.money import round_half_up
from billing.orders.models import Order
from billing.payments.models import Payment
from billing.refunds.services import refund_create
from billing.subscriptions import dunning, renewals, services
from billing.subscriptions.models import BillingEntry
from core.errors import InvalidInput
from tests.subscriptions.scenario import START, price_of, subscribe

pytestmark = pytest.mark.django_db(transaction=True)

HALF = START + timedelta(days=15)  # r = 1/2 of April


@pytest.fixture
def catalog_100(manual_org, make_product):
    def product(name, amount, recurring="month", **price):
        price = price or {"type": "fixed", "amount": amount}
        return make_product(name, recurring=recurring, prices=[{"currency": "usd", **price}])

    tiers = [{"up_to": 5, "unit_amount": 1000}, {"up_to": None, "unit_amount": 500}]
    seats = {"type": "seat_based", "seat_tier_mode": "graduated", "minimum_seats": 1, "maximum_seats": 50}
    return {
        "s100": product("Standard", 10000),
        "p200": product("Premium", 20000),
        "annual": product("Annual", 100000, recurring="year"),
        "quarterly": product("Quarterly", 27000, recurring=("month", 3)),
        "team": product("Team", None, seat_tiers=tiers, **seats),
        "team_plus": product("Team Plus", None, seat_tiers=[{"up_to": None, "unit_amount": 2000}], **seats),
    }


def discount(org, code, basis_points, duration="forever", months=None):
    return catalog.discount_create(
        organization=org,
        name=code,
        code=code,
        type="percentage",
        basis_points=basis_points,
        duration=duration,
        duration_in_months=months,
    )


def change(subscription, at, **kwargs):
    """Preview, then apply, at the same instant; returns (preview, subscription, order)."""
    with time_machine.travel(at, tick=False):
        preview = services.subscription_change_preview(subscription=subscription, **kwargs)
        subscription, order = services.subscription_change(subscription=subscription, **kwargs)
    if order is not None:
        order.refresh_from_db()
        assert preview.invoice is not None
        assert [(i.label, i.amount) for i in preview.invoice.items] == list(
            order.items.values_list("label", "amount")
        )
        assert (preview.invoice.order.total, preview.amount_due_now) == (order.total, order.due)
    subscription.refresh_from_db()
    return preview, subscription, order


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


def amounts(plan) -> list[tuple[str, int]]:
    return [(e.kind, e.amount) for e in plan.entries]


def test_upgrade_under_a_forever_discount_credits_what_was_paid(manual_org, catalog_100):
    discount(manual_org, "TWENTY", 2000)
    sub = subscribe(manual_org, catalog_100["s100"], discount_code="TWENTY")
    assert Order.objects.get(subscription=sub).total == 8000  # $100 less 20%

    preview, sub, order = change(
        sub, HALF, price_id=price_of(catalog_100["p200"]).pk, proration_behavior="invoice"
    )

    # Unused half of the $80 paid, remaining half of $200 less 20% ($160).
    assert amounts(preview) == [("proration_credit", -4000), ("proration_debit", 8000)]
    assert (order.subtotal, order.discount_amount, order.total, order.status) == (4000, 0, 4000, "paid")
    assert order.product_id == catalog_100["p200"].pk  # the order names what it was for
    payment = Payment.objects.get(reference=order.reference)
    assert (payment.trigger, payment.amount) == ("subscription_change", 4000)

    sub = renew_converged(sub)
    cycle = Order.objects.get(subscription=sub, billing_reason="subscription_cycle")
    assert (cycle.subtotal, cycle.discount_amount, cycle.total) == (20000, 4000, 16000)


def test_a_downgrade_under_the_discount_credits_the_difference_of_what_was_paid(manual_org, catalog_100):
    discount(manual_org, "TWENTY", 2000)
    sub = subscribe(manual_org, catalog_100["p200"], discount_code="TWENTY")  # paid $160

    preview, sub, order = change(
        sub, HALF, price_id=price_of(catalog_100["s100"]).pk, proration_behavior="invoice"
    )

    assert amounts(preview) == [("proration_credit", -8000), ("proration_debit", 4000)]
    assert preview.invoice.wallet_credit == 4000  # $40 back to the customer's balance, not $50
    assert (order.total, order.status) == (0, "paid")


def test_a_repeating_discount_ending_with_this_period_still_covers_its_rest(manual_org, catalog_100):
    discount(manual_org, "ONEMONTH", 2000, duration="repeating", months=1)
    sub = subscribe(manual_org, catalog_100["s100"], discount_code="ONEMONTH")
    assert sub.discount_periods_remaining == 0  # this period is its last

    preview, sub, _ = change(
        sub, HALF, price_id=price_of(catalog_100["p200"]).pk, proration_behavior="prorate"
    )

    assert amounts(preview) == [("proration_credit", -4000), ("proration_debit", 8000)]
    assert preview.next_order_adjustment == 4000
    sub = renew_converged(sub)
    cycle = Order.objects.get(subscription=sub, billing_reason="subscription_cycle")
    # The discount is over: the new plan at full price, plus the prorated difference.
    assert (cycle.subtotal, cycle.discount_amount, cycle.total) == (24000, 0, 24000)
    assert sub.discount_id is None


def test_a_free_period_credits_nothing_and_its_rest_stays_free(manual_org, catalog_100):
    discount(manual_org, "FREEMONTH", 10000, duration="once")
    sub = subscribe(manual_org, catalog_100["s100"], discount_code="FREEMONTH")
    assert Order.objects.get(subscription=sub).total == 0

    preview, sub, order = change(
        sub, HALF, price_id=price_of(catalog_100["p200"]).pk, proration_behavior="invoice"
    )

    assert (amounts(preview), order, preview.amount_due_now) == ([], None, 0)
    assert sub.price_id == price_of(catalog_100["p200"]).pk
    sub = renew_converged(sub)
    assert Order.objects.get(subscription=sub, billing_reason="subscription_cycle").total == 20000


def test_a_change_after_a_partial_refund_credits_only_what_is_still_paid(manual_org, catalog_100):
    sub = subscribe(manual_org, catalog_100["s100"])
    first = Order.objects.get(subscription=sub)
    with time_machine.travel(START + timedelta(days=1), tick=False):
        refund_create(order=first, amount=3000, reason="requested_by_customer")

    with time_machine.travel(HALF, tick=False):
        revoke_preview = services.subscription_revoke_preview(subscription=sub)
    preview, sub, order = change(
        sub, HALF, price_id=price_of(catalog_100["p200"]).pk, proration_behavior="invoice"
    )

    # Half of the $70 still paid, not of the $100 list price: one rule with revocation.
    assert amounts(preview) == [("proration_credit", -3500), ("proration_debit", 10000)]
    assert revoke_preview == (3500, 0)
    assert order.total == 6500


def test_two_changes_in_a_period_credit_the_plan_in_force(manual_org, catalog_100):
    discount(manual_org, "TWENTY", 2000)
    sub = subscribe(manual_org, catalog_100["s100"], discount_code="TWENTY")
    _, sub, _ = change(sub, HALF, price_id=price_of(catalog_100["p200"]).pk, proration_behavior="invoice")
    at = START + timedelta(days=24)  # 6 of 30 days left: r = 1/5

    preview, sub, _ = change(sub, at, price_id=price_of(catalog_100["s100"]).pk, proration_behavior="invoice")

    # A fifth of the $160 Premium rate billed by the first change; a fifth of $80.
    assert amounts(preview) == [("proration_credit", -3200), ("proration_debit", 1600)]
    assert preview.invoice.wallet_credit == 1600
    with time_machine.travel(at, tick=False):
        assert services.subscription_revoke_preview(subscription=sub) == (1600, 0)


def test_seats_on_graduated_tiers_prorate_the_tiered_amounts_after_the_discount(manual_org, catalog_100):
    discount(manual_org, "TWENTY", 2000)
    sub = subscribe(manual_org, catalog_100["team"], seats=3, discount_code="TWENTY")
    assert (sub.amount, Order.objects.get(subscription=sub).total) == (3000, 2400)

    preview, sub, order = change(sub, HALF, seats=8, proration_behavior="invoice")

    # 8 seats: 5 x 10 + 3 x 5 = $65; less 20% = $52; half of it, less half of the $24 paid.
    assert amounts(preview) == [("seats_decrease", -1200), ("seats_increase", 2600)]
    assert (sub.seats, sub.amount, order.total) == (8, 6500, 1400)
    assert all(item.proration for item in order.items.all())


def test_a_prorated_change_then_a_second_one_nets_the_pending_lines(manual_org, catalog_100):
    sub = subscribe(manual_org, catalog_100["team"], seats=2)  # 2000
    _, sub, _ = change(sub, HALF, seats=4, proration_behavior="prorate")  # -1000, +2000 pending
    at = START + timedelta(days=24)  # r = 1/5

    preview, sub, _ = change(sub, at, seats=3, proration_behavior="prorate")

    # The 4-seat rate ($40) is what the customer owes for now, though not paid yet.
    assert amounts(preview) == [("seats_decrease", -800), ("seats_increase", 600)]
    sub = renew_converged(sub)
    cycle = Order.objects.get(subscription=sub, billing_reason="subscription_cycle")
    assert cycle.subtotal == 3000 + (-1000 + 2000) + (-800 + 600)


# --- changes of interval --------------------------------------------------------------------


@pytest.mark.parametrize("behavior", ["invoice", "prorate"])
def test_monthly_to_yearly_starts_a_new_period_now_charged_now(manual_org, catalog_100, behavior):
    discount(manual_org, "TWENTY", 2000)
    sub = subscribe(manual_org, catalog_100["s100"], discount_code="TWENTY")

    preview, sub, order = change(
        sub, HALF, price_id=price_of(catalog_100["annual"]).pk, proration_behavior=behavior
    )

    assert preview.behavior == "invoice"  # a new period is billed when it starts
    assert amounts(preview) == [("cycle", 100000), ("proration_credit", -4000)]
    assert (order.subtotal, order.discount_amount, order.total) == (96000, 20000, 76000)
    assert (order.billing_reason, order.period_start, order.period_end) == (
        "subscription_update",
        HALF,
        HALF.replace(year=2028),
    )
    assert order.status == "paid"
    assert Payment.objects.get(reference=order.reference).trigger == "subscription_change"
    assert (sub.billing_anchor, sub.current_period_start, sub.current_period_end) == (
        HALF,
        HALF,
        HALF.replace(year=2028),
    )
    assert not BillingEntry.objects.filter(subscription=sub, order__isnull=True).exists()

    sub = renew_converged(sub)
    renewal = Order.objects.get(subscription=sub, billing_reason="subscription_cycle")
    assert (renewal.period_start, renewal.total) == (HALF.replace(year=2028), 80000)


def test_yearly_back_to_monthly_credits_the_unused_year_to_the_balance(manual_org, catalog_100):
    sub = subscribe(manual_org, catalog_100["annual"])  # 2027-04-01 to 2028-04-01: 366 days
    at = START + timedelta(days=61)  # June 1

    preview, sub, order = change(
        sub, at, price_id=price_of(catalog_100["s100"]).pk, proration_behavior="invoice"
    )

    r = Fraction(366 - 61, 366)
    credit = round_half_up(100000 * r)
    assert amounts(preview) == [("cycle", 10000), ("proration_credit", -credit)]
    assert preview.invoice.wallet_credit == credit - 10000
    assert (order.total, order.status) == (0, "paid")
    assert (sub.current_period_start, sub.current_period_end) == (at, at.replace(month=7))
    sub = renew_converged(sub)  # July's renewal is paid from the balance
    july = Order.objects.get(subscription=sub, billing_reason="subscription_cycle")
    assert (july.total, july.applied_balance, july.due) == (10000, 10000, 0)


def test_an_interval_count_change_without_proration_charges_the_new_period(manual_org, catalog_100):
    sub = subscribe(manual_org, catalog_100["s100"])

    preview, sub, order = change(
        sub, HALF, price_id=price_of(catalog_100["quarterly"]).pk, proration_behavior="none"
    )

    assert amounts(preview) == [("cycle", 27000)]
    assert (order.total, sub.current_period_end) == (27000, HALF.replace(month=7))


def test_an_interval_change_at_the_period_end_re_anchors_there(manual_org, catalog_100):
    sub = subscribe(manual_org, catalog_100["s100"])
    _, sub, _ = change(
        sub, HALF, price_id=price_of(catalog_100["annual"]).pk, proration_behavior="next_period"
    )
    assert sub.scheduled_change == {"price_id": str(price_of(catalog_100["annual"]).pk), "seats": None}

    sub = renew_converged(sub)

    may = START.replace(month=5)
    assert (sub.billing_anchor, sub.current_period_start, sub.current_period_end) == (
        may,
        may,
        may.replace(year=2028),
    )
    assert Order.objects.get(subscription=sub, billing_reason="subscription_cycle").total == 100000


# --- scheduled changes are kept unless replaced -------------------------------------------------


def test_a_seat_change_keeps_a_scheduled_plan_change(manual_org, catalog_100, api):
    sub = subscribe(manual_org, catalog_100["team"], seats=3)
    plus = price_of(catalog_100["team_plus"])
    _, sub, _ = change(sub, START + timedelta(days=5), price_id=plus.pk, proration_behavior="next_period")

    with time_machine.travel(HALF, tick=False):
        body = {"seats": 5, "proration_behavior": "prorate"}
        preview = api.post(f"/v1/subscriptions/{sub.pk}/change/preview", body, format="json").json()
        response = api.post(f"/v1/subscriptions/{sub.pk}/change", body, format="json")

    assert response.status_code == 200, response.json()
    kept = {"price_id": str(plus.pk), "seats": None}
    assert preview["scheduled_change"] == response.json()["scheduled_change"] == kept
    sub = renew_converged(sub)
    assert (sub.price_id, sub.seats, sub.amount, sub.scheduled_change) == (plus.pk, 5, 10000, None)


def test_a_plan_change_keeps_a_scheduled_seat_change(manual_org, catalog_100):
    sub = subscribe(manual_org, catalog_100["team"], seats=3)
    _, sub, _ = change(sub, START + timedelta(days=5), seats=2, proration_behavior="next_period")
    assert sub.scheduled_change == {"price_id": None, "seats": 2}
    plus = price_of(catalog_100["team_plus"])

    _, sub, _ = change(sub, HALF, price_id=plus.pk, proration_behavior="invoice")

    assert sub.scheduled_change == {"price_id": None, "seats": 2}
    assert (sub.price_id, sub.seats) == (plus.pk, 3)
    sub = renew_converged(sub)
    assert (sub.price_id, sub.seats, sub.amount) == (plus.pk, 2, 4000)


def test_next_period_changes_merge_and_replace_only_when_asked(manual_org, catalog_100):
    sub = subscribe(manual_org, catalog_100["team"], seats=3)
    plus = price_of(catalog_100["team_plus"])
    day = START + timedelta(days=5)
    _, sub, _ = change(sub, day, price_id=plus.pk, proration_behavior="next_period")
    _, sub, _ = change(sub, day, seats=6, proration_behavior="next_period")
    assert sub.scheduled_change == {"price_id": str(plus.pk), "seats": 6}

    _, sub, _ = change(sub, day, seats=4, proration_behavior="next_period", replace_scheduled_change=True)
    assert sub.scheduled_change == {"price_id": None, "seats": 4}

    with pytest.raises(InvalidInput) as same:
        change(sub, day, seats=4, proration_behavior="next_period")
    assert same.value.code == "no_change"


def test_replace_drops_the_scheduled_change_on_an_immediate_change(manual_org, catalog_100):
    sub = subscribe(manual_org, catalog_100["team"], seats=3)
    plus = price_of(catalog_100["team_plus"])
    _, sub, _ = change(sub, START + timedelta(days=5), price_id=plus.pk, proration_behavior="next_period")

    _, sub, _ = change(sub, HALF, seats=4, proration_behavior="prorate", replace_scheduled_change=True)

    assert sub.scheduled_change is None
    sub = renew_converged(sub)
    assert (sub.price_id, sub.seats) == (price_of(catalog_100["team"]).pk, 4)


def test_replace_alone_cancels_the_scheduled_change_and_bills_nothing(manual_org, catalog_100):
    sub = subscribe(manual_org, catalog_100["team"], seats=3)
    _, sub, _ = change(sub, START + timedelta(days=5), seats=2, proration_behavior="next_period")

    preview, sub, order = change(
        sub, HALF, seats=3, proration_behavior="invoice", replace_scheduled_change=True
    )

    assert (preview.entries, preview.scheduled_change, order, sub.scheduled_change) == ([], None, None, None)
    assert not BillingEntry.objects.exists()


def test_seats_the_kept_scheduled_plan_cannot_take_are_refused(manual_org, make_product, catalog_100):
    small = make_product(
        "Small team", recurring="month",
        prices=[{"currency": "usd", "type": "seat_based", "seat_tier_mode": "volume", "minimum_seats": 1,
                 "maximum_seats": 5, "seat_tiers": [{"up_to": None, "unit_amount": 700}]}],
    )  # fmt: skip
    sub = subscribe(manual_org, catalog_100["team"], seats=3)
    _, sub, _ = change(
        sub, START + timedelta(days=5), price_id=price_of(small).pk, proration_behavior="next_period"
    )
    before = (sub.seats, sub.scheduled_change, BillingEntry.objects.count())

    with time_machine.travel(HALF, tick=False), pytest.raises(InvalidInput) as refused:
        services.subscription_change(subscription=sub, seats=8, proration_behavior="prorate")

    assert (refused.value.field, refused.value.code) == ("seats", "seats_out_of_range")
    sub.refresh_from_db()
    assert (sub.seats, sub.scheduled_change, BillingEntry.objects.count()) == before


# --- what the change order is and how it is collected -------------------------------------------


def test_the_preview_applies_the_customers_balance_as_the_change_will(manual_org, catalog_100, operator):
    from billing.ledger.wallet import wallet_adjust

    sub = subscribe(manual_org, catalog_100["s100"])
    wallet_adjust(customer=sub.customer, amount=2000, currency="usd", reason="Goodwill", actor=operator)

    preview, sub, order = change(
        sub, HALF, price_id=price_of(catalog_100["p200"]).pk, proration_behavior="invoice"
    )

    assert (preview.invoice.order.total, preview.invoice.order.applied_balance, preview.amount_due_now) == (
        5000, 2000, 3000,
    )  # fmt: skip
    assert (order.applied_balance, order.due) == (2000, 3000)
    assert Payment.objects.get(reference=order.reference).amount == 3000


def test_a_failed_change_payment_is_dunned_like_a_renewal(manual_org, catalog_100):
    from accounts.models import Customer

    sub = subscribe(manual_org, catalog_100["s100"])
    Customer.objects.filter(pk=sub.customer_id).update(default_payment_method_id="")

    _, sub, order = change(sub, HALF, price_id=price_of(catalog_100["p200"]).pk, proration_behavior="invoice")

    payment = Payment.objects.get(reference=order.reference)
    assert (payment.trigger, payment.status, order.status) == ("subscription_change", "failed", "pending")
    assert order.dunning_deadline is not None and order.next_payment_attempt_at is not None
    assert sub.status == "past_due"
