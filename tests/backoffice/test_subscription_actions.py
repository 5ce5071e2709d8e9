"""Operator actions on the subscription and order pages: each modal's GET, invalid and valid
POSTs (audited by the service), the change preview and the role permissions."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.urls import reverse

from accounts.models import Customer, Organization
from billing.money import format_amount
from billing.orders.models import Order
from billing.payments.models import Payment
from billing.subscriptions import services
from billing.subscriptions.models import BillingEntry, Subscription
from core.models import AuditEntry
from tests.subscriptions.scenario import MIDDLE, START, price_of, subscribe

pytestmark = pytest.mark.django_db(transaction=True)  # payments refuse to run inside a transaction


@pytest.fixture(autouse=True)
def _at_middle():
    """Every test runs 10 days into the first period (logins included, so sessions are valid)."""
    with time_machine.travel(MIDDLE, tick=False):
        yield


@pytest.fixture
def basic(manual_org, plans):
    return subscribe(manual_org, plans["basic"], billing_address={"country": "GB"})  # 20% VAT


@pytest.fixture
def team(manual_org, plans):
    return subscribe(manual_org, plans["team"], seats=3)


@pytest.fixture
def trialing(manual_org, plans):
    return subscribe(manual_org, plans["basic"], trial_days=30)


@pytest.fixture
def canceling(basic):
    services.subscription_cancel(subscription=basic, reason="unused")
    return basic


@pytest.fixture
def pausing(basic):
    services.subscription_pause(subscription=basic)
    return basic


def action_url(obj, name: str) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_{name}", args=[obj.pk])


def change_url(obj) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])


def state(subscription) -> tuple:
    subscription.refresh_from_db()
    return (
        subscription.status, subscription.price_id, subscription.seats, subscription.amount,
        subscription.cancel_at_period_end, subscription.pause_at_period_end, subscription.trial_end,
        subscription.current_period_end, subscription.scheduled_change,
        BillingEntry.objects.count(), Order.objects.count(), Payment.objects.count(),
    )  # fmt: skip


ALL_ACTIONS = (
    "change_plan", "cancel", "uncancel", "pause", "resume", "extend_trial", "end_trial",
    "correct_period_end", "revoke",
)  # fmt: skip


def buttons(client, subscription) -> set[str]:
    html = client.get(change_url(subscription)).content.decode()
    return {name for name in ALL_ACTIONS if f'hx-get="{action_url(subscription, name)}"' in html}


# --- which actions show ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        ("basic", {"change_plan", "cancel", "pause", "correct_period_end", "revoke"}),
        ("canceling", {"change_plan", "uncancel", "pause", "correct_period_end", "revoke"}),
        ("pausing", {"change_plan", "cancel", "resume", "correct_period_end", "revoke"}),
        (
            "trialing",
            {"change_plan", "cancel", "pause", "extend_trial", "end_trial", "correct_period_end", "revoke"},
        ),
    ],
)
def test_the_page_shows_the_actions_that_apply(backoffice, request, fixture, expected):
    assert buttons(backoffice, request.getfixturevalue(fixture)) == expected


def test_an_ended_subscription_has_no_actions(backoffice, basic):
    services.subscription_revoke(subscription=basic, reason="fraud")

    assert buttons(backoffice, basic) == set()


# --- GET: the modal ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fixture", "fields"),
    [
        ("change_plan", "basic", ["price_id", "seats", "proration_behavior", "replace_scheduled_change"]),
        ("cancel", "basic", ["reason", "comment"]),
        ("uncancel", "canceling", []),
        ("revoke", "basic", ["reason", "credit"]),
        ("pause", "basic", []),
        ("resume", "pausing", []),
        ("extend_trial", "trialing", ["trial_end"]),
        ("end_trial", "trialing", []),
        ("correct_period_end", "basic", ["period_end", "reason"]),
    ],
)
def test_get_renders_the_modal(backoffice, htmx, request, name, fixture, fields):
    subscription = request.getfixturevalue(fixture)

    response = backoffice.get(action_url(subscription, name), **htmx)

    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith("<dialog")
    assert f'hx-post="{action_url(subscription, name)}"' in html
    assert "$30.00 / month" in html  # the subscription's amount, formatted
    for field in fields:
        assert f'name="{field}"' in html
    assert set(response.context["form"].fields) == set(fields)


def test_change_plan_offers_the_same_currency_recurring_prices_of_any_interval(
    backoffice, htmx, manual_org, basic, plans, make_product
):
    Organization.objects.filter(pk=manual_org.pk).update(proration_default="next_period")
    archived = make_product("Old", recurring="month")
    archived.is_archived = True
    archived.save(update_fields=["is_archived"])

    response = backoffice.get(action_url(basic, "change_plan"), **htmx)

    form = response.context["form"]
    offered = set(form.fields["price_id"].queryset)
    assert offered == {price_of(plans[name]) for name in ("basic", "pro", "team", "yearly")}
    assert form.initial == {"price_id": basic.price_id, "seats": None, "proration_behavior": "next_period"}
    html = response.content.decode()
    assert "Pro · $90.00 / month" in html and "Team · per seat, 1 to 50 seats" in html
    assert "Euro" not in html


# --- the change preview ------------------------------------------------------------------------


def test_change_preview_shows_what_the_change_then_bills(backoffice, htmx, operator, basic, plans):
    data = {"price_id": price_of(plans["pro"]).pk, "seats": "", "proration_behavior": "invoice"}
    before = state(basic)

    previewed = backoffice.post(action_url(basic, "change_plan"), {**data, "_preview": "1"}, **htmx)

    assert previewed.status_code == 200 and "HX-Redirect" not in previewed.headers
    preview = previewed.context["preview"]
    assert (preview["amount_due_now"], preview["next_order_adjustment"]) == (4800, 0)
    html = previewed.content.decode()
    for text in (
        "Unused time on Basic", format_amount(-2000, "usd"), "Remaining time on Pro", "$60.00",
        "$40.00", "$8.00 (20%)", "$48.00", "$90.00 / month",
    ):  # fmt: skip
        assert text in html, text
    assert state(basic) == before and not AuditEntry.objects.exists()

    done = backoffice.post(action_url(basic, "change_plan"), data, **htmx)

    assert done.headers["HX-Redirect"] == change_url(basic)
    order = Order.objects.get(subscription=basic, billing_reason="subscription_update")
    assert (order.total, order.status) == (preview["amount_due_now"], "paid")
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor, entry.object_id) == ("subscription.change", operator, str(basic.pk))
    assert "Plan changed" in backoffice.get(change_url(basic)).content.decode()


def test_prorate_preview_shows_the_next_order_adjustment(backoffice, htmx, team):
    data = {"price_id": team.price_id, "seats": "5", "proration_behavior": "prorate", "_preview": "1"}

    response = backoffice.post(action_url(team, "change_plan"), data, **htmx)

    preview = response.context["preview"]
    assert (preview["amount_due_now"], preview["next_order_adjustment"]) == (0, 1333)
    assert "$13.33" in response.content.decode()
    assert not BillingEntry.objects.exists()


# --- POST: invalid input ---------------------------------------------------------------------


def _price(plans, name):
    return price_of(plans[name]).pk


INVALID = [
    ("cancel", "basic", {"reason": "bogus"}, "reason"),
    ("cancel", "basic", {"comment": "no reason"}, "reason"),
    ("revoke", "basic", {"reason": "   "}, "reason"),
    ("change_plan", "team", {"price": "team", "seats": "51", "proration_behavior": "invoice"}, "seats"),
    ("change_plan", "team", {"price": "team", "seats": "0", "proration_behavior": "invoice"}, "seats"),
    ("change_plan", "team", {"price": "team", "seats": "3", "proration_behavior": "none"}, "price_id"),
    ("change_plan", "basic", {"price": "euro", "proration_behavior": "invoice"}, "price_id"),
    ("change_plan", "basic", {"price": "pro", "proration_behavior": "sometimes"}, "proration_behavior"),
    ("extend_trial", "trialing", {"trial_end": "2027-04-20"}, "trial_end"),
    ("extend_trial", "trialing", {"trial_end": "soon"}, "trial_end"),
    ("correct_period_end", "basic", {"period_end": "2027-04-05T00:00", "reason": "typo"}, "period_end"),
    ("correct_period_end", "basic", {"period_end": "2027-05-05T00:00", "reason": " "}, "reason"),
    ("uncancel", "basic", {}, None),
    ("resume", "basic", {}, None),
]


@pytest.mark.parametrize(
    ("name", "fixture", "data", "field", "preview"),
    [(*case, False) for case in INVALID] + [(*case, True) for case in INVALID if case[0] == "change_plan"],
)
def test_invalid_post_rerenders_with_the_error_and_changes_nothing(
    backoffice, htmx, request, plans, name, fixture, data, field, preview
):
    subscription = request.getfixturevalue(fixture)
    if "price" in data:
        data = {k: v for k, v in data.items() if k != "price"} | {"price_id": _price(plans, data["price"])}
    audits, before = AuditEntry.objects.count(), state(subscription)

    response = backoffice.post(
        action_url(subscription, name), {**data, **({"_preview": "1"} if preview else {})}, **htmx
    )

    assert response.status_code == 200
    assert "HX-Redirect" not in response.headers
    errors = response.context["form"].errors
    assert list(errors) == [field or "__all__"]
    assert str(errors[field or "__all__"][0]) in response.content.decode().replace("&#x27;", "'")
    assert response.context["preview"] is None
    assert state(subscription) == before
    assert AuditEntry.objects.count() == audits


# --- POST: valid -------------------------------------------------------------------------------


def _trial_end_day(subscription) -> str:
    return (subscription.trial_end + timedelta(days=5)).date().isoformat()


@pytest.mark.parametrize(
    ("name", "fixture", "data", "audit", "check"),
    [
        (
            "cancel", "basic", {"reason": "too_expensive", "comment": "Pricey"}, "subscription.cancel",
            lambda s: s.cancel_at_period_end and s.cancellation_reason == "too_expensive",
        ),
        ("uncancel", "canceling", {}, "subscription.uncancel", lambda s: not s.cancel_at_period_end),
        (
            "revoke", "basic", {"reason": "fraud"}, "subscription.revoke",
            lambda s: s.status == "canceled" and s.ended_at == MIDDLE,
        ),
        ("pause", "basic", {}, "subscription.pause", lambda s: s.pause_at_period_end),
        ("resume", "pausing", {}, "subscription.resume", lambda s: not s.pause_at_period_end),
        (
            "extend_trial", "trialing", {"trial_end": _trial_end_day}, "subscription.trial_extend",
            lambda s: s.trial_end == START + timedelta(days=35),
        ),
        (
            "end_trial", "trialing", {}, "subscription.trial_end",
            lambda s: s.status == "active" and s.trial_end == MIDDLE,
        ),
        (
            "correct_period_end", "basic", {"period_end": "2027-05-05T12:30", "reason": "goodwill"},
            "subscription.period_end_correct",
            lambda s: s.current_period_end == datetime(2027, 5, 5, 12, 30, tzinfo=UTC),
        ),
        (
            "change_plan", "team", {"price": "team", "seats": "5", "proration_behavior": "prorate"},
            "subscription.change", lambda s: (s.seats, s.amount) == (5, 5000),
        ),
    ],
)  # fmt: skip
def test_valid_post_acts_audits_and_redirects(
    backoffice, htmx, operator, request, plans, name, fixture, data, audit, check
):
    subscription = request.getfixturevalue(fixture)
    data = {k: (v(subscription) if callable(v) else v) for k, v in data.items()}
    if "price" in data:
        data = {k: v for k, v in data.items() if k != "price"} | {"price_id": _price(plans, data["price"])}

    response = backoffice.post(action_url(subscription, name), data, **htmx)

    assert response.status_code == 200, response.context["form"].errors if response.context else None
    assert response.headers["HX-Redirect"] == change_url(subscription)
    subscription.refresh_from_db()
    assert check(subscription)
    entry = AuditEntry.objects.filter(action=audit).get()
    assert (entry.actor, entry.object_id) == (operator, str(subscription.pk))
    if name in ("revoke", "correct_period_end"):
        assert entry.reason == data["reason"]


def test_post_without_htmx_redirects(backoffice, basic):
    response = backoffice.post(action_url(basic, "pause"), {})

    assert (response.status_code, response.url) == (302, change_url(basic))


# --- permissions -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        ("support", {"cancel", "pause", "correct_period_end"}),
        ("finance", {"change_plan", "cancel", "pause", "correct_period_end", "revoke"}),
        ("admin", {"change_plan", "cancel", "pause", "correct_period_end", "revoke"}),
        (None, set()),
    ],
)
def test_each_role_sees_and_may_use_its_actions(client, make_staff, htmx, basic, role, allowed):
    user = make_staff(*([role] if role else []))
    client.force_login(user)
    offered = {"change_plan", "cancel", "pause", "correct_period_end", "revoke"}  # for an active one

    if role is not None:
        assert buttons(client, basic) == allowed
    for name in offered:
        status = client.get(action_url(basic, name), **htmx).status_code
        assert status == (200 if name in allowed else 403), name
    before = state(basic)
    for name in offered - allowed:
        assert client.post(action_url(basic, name), {"reason": "x"}, **htmx).status_code == 403
    assert state(basic) == before
    assert not AuditEntry.objects.exists()


def test_support_may_not_end_a_trial_but_may_extend_it(client, make_staff, htmx, trialing):
    client.force_login(make_staff("support"))

    assert client.get(action_url(trialing, "extend_trial"), **htmx).status_code == 200
    assert client.post(action_url(trialing, "end_trial"), {}, **htmx).status_code == 403
    assert Subscription.objects.get(pk=trialing.pk).status == "trialing"


# --- orders: retry payment ---------------------------------------------------------------------


@pytest.fixture
def unpaid_order(basic, plans):
    """An upgrade invoiced while the customer had no payment method: pending, first attempt failed."""
    Customer.objects.filter(pk=basic.customer_id).update(default_payment_method_id="")
    _, order = services.subscription_change(
        subscription=basic, price_id=price_of(plans["pro"]).pk, proration_behavior="invoice"
    )
    order.refresh_from_db()
    assert order.status == "pending"
    return order


def test_pending_order_offers_retry_payment(backoffice, htmx, unpaid_order):
    url = action_url(unpaid_order, "retry_payment")
    assert f'hx-get="{url}"' in backoffice.get(change_url(unpaid_order)).content.decode()

    response = backoffice.get(url, **htmx)

    html = response.content.decode()
    assert response.status_code == 200 and html.lstrip().startswith("<dialog")
    assert "$48.00" in html and "No payment method on file." in html


def test_retry_payment_charges_audits_and_redirects(backoffice, htmx, operator, unpaid_order):
    Customer.objects.filter(pk=unpaid_order.customer_id).update(default_payment_method_id="pm_manual")

    response = backoffice.post(action_url(unpaid_order, "retry_payment"), {}, **htmx)

    assert response.headers["HX-Redirect"] == change_url(unpaid_order)
    unpaid_order.refresh_from_db()
    assert unpaid_order.status == "paid"
    latest = Payment.objects.filter(reference=unpaid_order.reference).latest("attempt")
    assert (latest.trigger, latest.status) == ("operator_retry", "succeeded")
    entry = AuditEntry.objects.get(action="order.retry_payment")
    assert (entry.actor, entry.object_id) == (operator, str(unpaid_order.pk))
    page = backoffice.get(change_url(unpaid_order)).content.decode()
    assert "Payment of $48.00 succeeded." in page
    assert action_url(unpaid_order, "retry_payment") not in page


def test_retrying_a_paid_order_shows_the_conflict(backoffice, htmx, basic):
    order = Order.objects.get(subscription=basic)
    payments = Payment.objects.count()

    response = backoffice.post(action_url(order, "retry_payment"), {}, **htmx)

    assert "HX-Redirect" not in response.headers
    assert response.context["form"].non_field_errors() == ["Only an unpaid order can be retried."]
    assert Payment.objects.count() == payments and not AuditEntry.objects.exists()


@pytest.mark.parametrize(("role", "status"), [("support", 200), ("finance", 200), (None, 403)])
def test_retry_payment_permission(client, make_staff, htmx, unpaid_order, role, status):
    client.force_login(make_staff(*([role] if role else [])))
    url = action_url(unpaid_order, "retry_payment")

    assert client.get(url, **htmx).status_code == status
    if status == 403:
        assert client.post(url, {}, **htmx).status_code == 403
        assert Order.objects.get(pk=unpaid_order.pk).status == "pending"


def test_a_failed_retry_says_why(backoffice, htmx, unpaid_order):
    response = backoffice.post(action_url(unpaid_order, "retry_payment"), {}, **htmx)

    assert response.headers["HX-Redirect"] == change_url(unpaid_order)
    assert Order.objects.get(pk=unpaid_order.pk).status == "pending"
    page = backoffice.get(change_url(unpaid_order)).content.decode()
    assert "Payment of $48.00 failed: No payment method on file." in page
