"""Changes with proration, cancellation, pause and trials, billed through the manual processor."""

from datetime import timedelta

import pytest
import time_machine

from billing.orders.models import Order
from billing.subscriptions import dunning, renewals, services
from billing.subscriptions.models import BillingEntry
from core.errors import Conflict, InvalidInput
from core.events.models import Event
from core.models import AuditEntry
from tests.subscriptions.scenario import START, price_of, subscribe

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("behavior", ["invoice", "prorate", "next_period", "none"])
def test_upgrade_mid_period_under_each_behavior(manual_org, plans, behavior):
    subscription = subscribe(manual_org, plans["basic"])
    middle = START + timedelta(days=10)  # 20 of 30 days left: r = 2/3
    with time_machine.travel(middle, tick=False):
        preview = services.subscription_change_preview(
            subscription=subscription, price_id=price_of(plans["pro"]).pk, proration_behavior=behavior
        )
        subscription, order = services.subscription_change(
            subscription=subscription, price_id=price_of(plans["pro"]).pk, proration_behavior=behavior
        )
    expected_entries = {"invoice": [-2000, 6000], "prorate": [-2000, 6000]}.get(behavior, [])
    assert [e.amount for e in preview.entries] == expected_entries
    if behavior == "invoice":
        order.refresh_from_db()  # paid after commit, outside the change's transaction
        assert (order.billing_reason, order.total, order.status) == ("subscription_update", 4000, "paid")
        assert preview.invoice.order.total == order.total  # the preview is what was billed
        assert sorted(order.items.values_list("amount", flat=True)) == [-2000, 6000]
    else:
        assert order is None
    if behavior == "prorate":
        assert sorted(BillingEntry.objects.filter(order__isnull=True).values_list("amount", flat=True)) == [
            -2000,
            6000,
        ]
        assert preview.next_order_adjustment == 4000
    subscription.refresh_from_db()
    assert subscription.product.name == ("Basic" if behavior == "next_period" else "Pro")

    with time_machine.travel(subscription.current_period_end + timedelta(seconds=1), tick=False):
        renewals.renewals_run()
        dunning.dunning_run()
        assert renewals.renewals_run().cycled == 0  # convergence
    subscription.refresh_from_db()
    assert (subscription.product.name, subscription.amount) == ("Pro", 9000)
    cycle = Order.objects.get(billing_reason="subscription_cycle")
    assert cycle.subtotal == (9000 + 4000 if behavior == "prorate" else 9000)
    assert cycle.status == "paid"


def test_downgrade_at_period_end_keeps_the_current_plan_until_renewal(manual_org, plans):
    subscription = subscribe(manual_org, plans["pro"])
    with time_machine.travel(START + timedelta(days=3), tick=False):
        services.subscription_change(
            subscription=subscription, price_id=price_of(plans["basic"]).pk, proration_behavior="next_period"
        )
    subscription.refresh_from_db()
    assert subscription.product.name == "Pro" and subscription.scheduled_change
    with time_machine.travel(subscription.current_period_end, tick=False):
        renewals.renewals_run()
    subscription.refresh_from_db()
    assert (subscription.product.name, subscription.scheduled_change) == ("Basic", None)
    assert Order.objects.get(billing_reason="subscription_cycle").total == 3000


def test_seat_change_prorates_to_the_second(manual_org, plans):
    subscription = subscribe(manual_org, plans["team"], seats=3)
    assert subscription.amount == 3000
    with time_machine.travel(START + timedelta(days=15, seconds=1), tick=False):
        preview = services.subscription_change_preview(
            subscription=subscription, seats=5, proration_behavior="prorate"
        )
    # (30 days - 15 days - 1 s) / 30 days of 3000 and of 5000, half-up
    left = 30 * 86400 - 15 * 86400 - 1
    assert [e.amount for e in preview.entries] == [
        -round(3000 * left / (30 * 86400)),
        round(5000 * left / (30 * 86400)),
    ]
    assert {e.kind for e in preview.entries} == {"seats_decrease", "seats_increase"}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"seats": 51}, "seats"),
        ({"seats": 0}, "seats"),
        ({"proration_behavior": "sometimes", "seats": 4}, "proration_behavior"),
        ({"price": "euro"}, "price_id"),
        ({"seats": 3}, "price_id"),  # no change
    ],
)
def test_bad_changes_are_refused_and_change_nothing(manual_org, plans, change, field):
    subscription = subscribe(manual_org, plans["team"], seats=3)
    kwargs = {"seats": change.get("seats"), "proration_behavior": change.get("proration_behavior")}
    if "price" in change:
        kwargs["price_id"] = price_of(plans[change["price"]]).pk
    with pytest.raises(InvalidInput) as refused:
        services.subscription_change(subscription=subscription, **kwargs)
    assert refused.value.field == field
    subscription.refresh_from_db()
    assert (subscription.seats, subscription.amount) == (3, 3000)
    assert not BillingEntry.objects.exists()


def test_cancel_uncancel_and_end_at_period_end(manual_org, plans, operator):
    subscription = subscribe(manual_org, plans["basic"])
    with pytest.raises(InvalidInput):
        services.subscription_cancel(subscription=subscription, reason="because")
    services.subscription_cancel(
        subscription=subscription, reason="too_expensive", comment="Pricey", actor=operator
    )
    services.subscription_uncancel(subscription=subscription, actor=operator)
    services.subscription_cancel(subscription=subscription, reason="unused")
    with time_machine.travel(subscription.current_period_end, tick=False):
        result = renewals.renewals_run()
    assert (result.ended, result.cycled) == (1, 0)
    subscription.refresh_from_db()
    assert (subscription.status, subscription.ended_at) == ("canceled", subscription.current_period_end)
    assert Order.objects.count() == 1
    with pytest.raises(Conflict):
        services.subscription_change(
            subscription=subscription, seats=None, price_id=price_of(plans["pro"]).pk
        )
    # The operator's cancel and uncancel, and the cancel the renewals job carried out.
    assert AuditEntry.objects.filter(action__startswith="subscription.", actor_kind="user").count() == 2


def test_revoke_ends_now_and_stops_dunning(manual_org, plans):
    subscription = subscribe(manual_org, plans["basic"])
    services.subscription_revoke(subscription=subscription, reason="fraud")
    subscription.refresh_from_db()
    # Access goes now: subscription.revoked is recorded at once, nothing left for the job.
    assert subscription.status == "canceled" and subscription.benefits_revoke_at is None
    assert Event.objects.filter(type="subscription.revoked", object_id=str(subscription.pk)).count() == 1
    with pytest.raises(Conflict):
        services.subscription_revoke(subscription=subscription)


def test_pause_at_period_end_and_resume(manual_org, plans):
    subscription = subscribe(manual_org, plans["basic"])
    services.subscription_pause(subscription=subscription)
    with time_machine.travel(subscription.current_period_end, tick=False):
        assert renewals.renewals_run().paused == 1
    subscription.refresh_from_db()
    assert subscription.status == "paused"
    resume_at = subscription.current_period_end + timedelta(days=10)
    with time_machine.travel(resume_at, tick=False):
        subscription, order = services.subscription_resume(subscription=subscription)
    assert subscription.status == "active"
    assert subscription.current_period_start == resume_at
    order.refresh_from_db()
    assert (order.status, order.total) == ("paid", 3000)


def test_trial_extend_and_end_now(manual_org, plans):
    subscription = subscribe(manual_org, plans["basic"], trial_days=7)
    with pytest.raises(InvalidInput):
        services.subscription_trial_extend(subscription=subscription, trial_end=START)
    services.subscription_trial_extend(subscription=subscription, trial_end=START + timedelta(days=14))
    subscription.refresh_from_db()
    assert subscription.current_period_end == START + timedelta(days=14)
    with time_machine.travel(START + timedelta(days=2), tick=False):
        subscription = services.subscription_trial_end_now(subscription=subscription)
    assert subscription.status == "active"
    assert Order.objects.get(billing_reason="subscription_cycle_after_trial").status == "paid"


def test_period_end_correction_never_into_the_past(manual_org, plans, operator):
    subscription = subscribe(manual_org, plans["basic"])
    with time_machine.travel(START + timedelta(days=1), tick=False):
        with pytest.raises(InvalidInput):
            services.subscription_period_end_correct(
                subscription=subscription, period_end=START, actor=operator, reason="typo"
            )
        services.subscription_period_end_correct(
            subscription=subscription,
            period_end=START + timedelta(days=40),
            actor=operator,
            reason="goodwill",
        )
    assert AuditEntry.objects.get(action="subscription.period_end_correct").reason == "goodwill"


def test_discount_change_applies_from_the_next_order(manual_org, plans, api):
    from billing.catalog import services as catalog

    subscription = subscribe(manual_org, plans["basic"])
    catalog.discount_create(
        organization=manual_org, name="Half", code="HALF", type="percentage", basis_points=5000
    )
    catalog.discount_create(
        organization=manual_org, name="Gone", code="GONE", type="percentage", basis_points=1000,
        ends_at=START + timedelta(days=1),
    )  # fmt: skip
    with time_machine.travel(START + timedelta(days=5), tick=False):
        expired = api.post(
            f"/v1/subscriptions/{subscription.pk}/discount", {"discount_code": "GONE"}, format="json"
        )
        unknown = api.post(
            f"/v1/subscriptions/{subscription.pk}/discount", {"discount_code": "NOPE"}, format="json"
        )
        applied = api.post(
            f"/v1/subscriptions/{subscription.pk}/discount", {"discount_code": "half"}, format="json"
        )
    assert (expired.status_code, expired.json()["errors"][0]["code"]) == (400, "discount_expired")
    assert (unknown.status_code, unknown.json()["errors"][0]["field"]) == (400, "discount_code")
    assert applied.status_code == 200, applied.json()
    assert not BillingEntry.objects.exists()  # the billed period is not re-priced

    with time_machine.travel(subscription.current_period_end, tick=False):
        renewals.renewals_run()
    order = Order.objects.get(billing_reason="subscription_cycle")
    assert (order.subtotal, order.discount_amount, order.total) == (3000, 1500, 1500)

    subscription.refresh_from_db()
    services.subscription_discount_change(subscription=subscription, discount_code="")
    subscription.refresh_from_db()
    assert subscription.discount is None
    with pytest.raises(InvalidInput):
        services.subscription_discount_change(subscription=subscription, discount_code="")
