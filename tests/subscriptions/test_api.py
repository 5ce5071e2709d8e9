"""/v1/subscriptions actions (change with preview, cancel, revoke, pause, trials) and
/v1/orders/{id}/retry_payment, over the manual processor."""

from datetime import timedelta

import pytest
import time_machine
from rest_framework.test import APIClient

from accounts.models import Customer, Organization
from billing.ledger.selectors import wallet_balance
from billing.orders.models import Order
from billing.payments.models import Payment
from billing.subscriptions import renewals
from billing.subscriptions.models import BillingEntry, Subscription
from core.models import IdempotencyRecord
from tests.subscriptions.scenario import MIDDLE, START, price_of, subscribe

pytestmark = pytest.mark.django_db(transaction=True)  # payments refuse to run inside a transaction


@pytest.fixture(autouse=True)
def _at_middle():
    """Every test runs 10 days into the subscriptions' first period (they are created at START)."""
    with time_machine.travel(MIDDLE, tick=False):
        yield


@pytest.fixture
def basic(manual_org, plans):
    return subscribe(manual_org, plans["basic"], billing_address={"country": "GB"})  # 20% VAT


@pytest.fixture
def team(manual_org, plans):
    return subscribe(manual_org, plans["team"], seats=3)


def url(subscription, action: str) -> str:
    return f"/v1/subscriptions/{subscription.pk}/{action}"


def state(subscription) -> tuple:
    """Everything a refused request must leave as it was."""
    subscription.refresh_from_db()
    return (
        subscription.status, subscription.price_id, subscription.seats, subscription.amount,
        subscription.cancel_at_period_end, subscription.pause_at_period_end, subscription.trial_end,
        subscription.current_period_end, subscription.scheduled_change,
        BillingEntry.objects.count(), Order.objects.count(), Payment.objects.count(),
    )  # fmt: skip


def errors_of(response) -> list[tuple[str, str]]:
    return [(e["field"], e["code"]) for e in response.json()["errors"]]


# --- change preview and change ---------------------------------------------------------------


def test_invoice_preview_shows_lines_and_the_amount_due_now_and_writes_nothing(api, basic, plans):
    before = state(basic)
    pro = price_of(plans["pro"])

    response = api.post(
        url(basic, "change/preview"),
        {"price_id": str(pro.pk), "proration_behavior": "invoice"},
        format="json",
    )

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["proration_behavior"] == "invoice"
    assert body["effective_at"] == MIDDLE.isoformat().replace("+00:00", "Z")
    assert (body["price_id"], body["product_id"], body["amount"], body["currency"]) == (
        str(pro.pk), str(plans["pro"].pk), 9000, "usd",
    )  # fmt: skip
    assert [(line["kind"], line["amount"]) for line in body["lines"]] == [
        ("proration_credit", -2000),
        ("proration_debit", 6000),
    ]
    assert body["lines"][0]["label"] == "Unused time on Basic"
    assert body["lines"][0]["period_end"] == basic.current_period_end.isoformat().replace("+00:00", "Z")
    invoice = body["invoice"]
    assert (invoice["subtotal"], invoice["tax"], invoice["total"], invoice["tax_rate_bps"]) == (
        4000, 800, 4800, 2000,
    )  # fmt: skip
    assert [item["amount"] for item in invoice["items"]] == [-2000, 6000]
    assert (body["amount_due_now"], body["next_order_adjustment"]) == (4800, 0)
    assert state(basic) == before


def test_prorate_preview_moves_the_difference_to_the_next_order(api, basic, plans):
    response = api.post(
        url(basic, "change/preview"),
        {"price_id": str(price_of(plans["pro"]).pk), "proration_behavior": "prorate"},
        format="json",
    )

    body = response.json()
    assert (body["amount_due_now"], body["next_order_adjustment"], body["invoice"]) == (0, 4000, None)
    assert [line["amount"] for line in body["lines"]] == [-2000, 6000]


def test_next_period_preview_takes_effect_at_renewal(api, basic, plans):
    response = api.post(
        url(basic, "change/preview"),
        {"price_id": str(price_of(plans["pro"]).pk), "proration_behavior": "next_period"},
        format="json",
    )

    body = response.json()
    assert body["effective_at"] == basic.current_period_end.isoformat().replace("+00:00", "Z")
    assert (body["lines"], body["amount_due_now"], body["next_order_adjustment"]) == ([], 0, 0)


def test_downgrade_invoiced_now_credits_the_customers_balance(api, manual_org, plans):
    pro = subscribe(manual_org, plans["pro"])
    body = {"price_id": str(price_of(plans["basic"]).pk), "proration_behavior": "invoice"}
    preview = api.post(url(pro, "change/preview"), body, format="json").json()

    assert (preview["amount_due_now"], preview["next_order_adjustment"], preview["balance_credit"]) == (
        0, 0, 4000,
    )  # fmt: skip
    order = api.post(url(pro, "change"), body, format="json").json()["order"]
    assert (order["status"], order["total"], order["applied_balance"]) == ("paid", 0, 0)
    assert not BillingEntry.objects.filter(subscription=pro, order__isnull=True).exists()
    assert wallet_balance(pro.customer, "usd") == 4000  # the credit waits in the wallet

    with time_machine.travel(pro.current_period_end, tick=False):
        renewals.renewals_run()
        assert renewals.renewals_run().cycled == 0  # convergence
    renewal = Order.objects.get(subscription=pro, billing_reason="subscription_cycle")
    assert (renewal.total, renewal.applied_balance, renewal.due, renewal.status) == (3000, 3000, 0, "paid")
    assert wallet_balance(pro.customer, "usd") == 1000


def test_preview_defaults_to_the_organization_proration(api, manual_org, basic, plans):
    Organization.objects.filter(pk=manual_org.pk).update(proration_default="prorate")

    body = api.post(
        url(basic, "change/preview"), {"price_id": str(price_of(plans["pro"]).pk)}, format="json"
    ).json()

    assert body["proration_behavior"] == "prorate"


def test_preview_needs_only_the_read_scope_and_change_needs_write(make_api, manual_org, basic, plans):
    reader = make_api(manual_org, scopes=["subscriptions:read"])
    body = {"price_id": str(price_of(plans["pro"]).pk), "proration_behavior": "invoice"}

    assert reader.post(url(basic, "change/preview"), body, format="json").status_code == 200
    denied = reader.post(url(basic, "change"), body, format="json")
    assert (denied.status_code, denied.json()["code"]) == (403, "insufficient_scope")
    assert Order.objects.count() == 1


def test_change_with_invoice_bills_what_the_preview_showed(api, basic, plans):
    body = {"price_id": str(price_of(plans["pro"]).pk), "proration_behavior": "invoice"}
    preview = api.post(url(basic, "change/preview"), body, format="json").json()

    response = api.post(url(basic, "change"), body, format="json")

    assert response.status_code == 200, response.json()
    data = response.json()
    assert (data["id"], data["price_id"], data["amount"]) == (str(basic.pk), body["price_id"], 9000)
    order = data["order"]
    assert (order["billing_reason"], order["status"]) == ("subscription_update", "paid")
    assert (order["subtotal"], order["tax"], order["total"]) == (
        preview["invoice"]["subtotal"], preview["invoice"]["tax"], preview["amount_due_now"],
    )  # fmt: skip
    assert sorted(item["amount"] for item in order["items"]) == [-2000, 6000]
    assert Order.objects.get(pk=order["id"]).status == "paid"


def test_seat_change_with_prorate_leaves_entries_for_the_next_order(api, team):
    response = api.post(url(team, "change"), {"seats": 5, "proration_behavior": "prorate"}, format="json")

    assert response.status_code == 200, response.json()
    data = response.json()
    assert (data["seats"], data["amount"], data["order"]) == (5, 5000, None)
    pending = BillingEntry.objects.filter(subscription=team, order__isnull=True)
    assert sorted(pending.values_list("kind", "amount")) == [
        ("seats_decrease", -2000),
        ("seats_increase", 3333),
    ]


def test_next_period_change_is_scheduled(api, basic, plans):
    pro = price_of(plans["pro"])

    data = api.post(
        url(basic, "change"), {"price_id": str(pro.pk), "proration_behavior": "next_period"}, format="json"
    ).json()

    assert data["price_id"] == str(basic.price_id)  # unchanged until renewal
    assert data["scheduled_change"] == {"price_id": str(pro.pk), "seats": None}


def test_replayed_change_with_the_same_key_bills_once(api, basic, plans):
    body = {"price_id": str(price_of(plans["pro"]).pk), "proration_behavior": "invoice"}
    headers = {"HTTP_IDEMPOTENCY_KEY": "upgrade-1"}

    first = api.post(url(basic, "change"), body, format="json", **headers)
    second = api.post(url(basic, "change"), body, format="json", **headers)

    assert first.status_code == second.status_code == 200
    assert second["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()
    assert Order.objects.filter(billing_reason="subscription_update").count() == 1
    assert BillingEntry.objects.filter(subscription=basic).count() == 2  # one credit, one debit
    assert Payment.objects.filter(reference__startswith="order:").count() == 1
    reused = api.post(
        url(basic, "change"), {**body, "proration_behavior": "prorate"}, format="json", **headers
    )
    assert (reused.status_code, reused.json()["code"]) == (409, "idempotency_key_reused")


def test_replayed_prorated_change_writes_one_set_of_entries(api, team):
    headers = {"HTTP_IDEMPOTENCY_KEY": "seats-5"}
    body = {"seats": 5, "proration_behavior": "prorate"}

    for _ in range(2):
        assert api.post(url(team, "change"), body, format="json", **headers).status_code == 200

    assert BillingEntry.objects.filter(subscription=team).count() == 2
    assert IdempotencyRecord.objects.filter(key="seats-5").count() == 1


@pytest.mark.parametrize(
    ("subscription", "body", "error"),
    [
        ("team", {"seats": 4, "proration_behavior": "sometimes"}, ("proration_behavior", "invalid_choice")),
        ("team", {"seats": 51}, ("seats", "seats_out_of_range")),
        ("team", {"seats": 0}, ("seats", "min_value")),
        ("team", {"seats": "many"}, ("seats", "invalid")),
        ("team", {"seats": 3}, ("price_id", "no_change")),
        ("team", {"price": "euro"}, ("price_id", "currency_mismatch")),
        ("team", {"price_id": "not-a-uuid"}, ("price_id", "invalid")),
        ("team", {"price_id": "00000000-0000-0000-0000-000000000000"}, ("price_id", "not_found")),
        ("basic", {"price": "pro", "seats": 2}, ("seats", "not_seat_based")),
    ],
)
@pytest.mark.parametrize("action", ["change/preview", "change"])
def test_bad_changes_answer_400_with_the_field_and_change_nothing(
    api, request, plans, subscription, body, error, action
):
    subscription = request.getfixturevalue(subscription)
    if "price" in body:
        body = {k: v for k, v in body.items() if k != "price"} | {
            "price_id": str(price_of(plans[body["price"]]).pk)
        }
    before = state(subscription)

    response = api.post(url(subscription, action), body, format="json")

    assert response.status_code == 400, response.json()
    assert error in errors_of(response)
    assert state(subscription) == before


def test_another_organizations_price_is_not_found(api, team, make_org, make_product):
    theirs = make_product("Theirs", recurring="month", organization=make_org("Other"))

    response = api.post(url(team, "change"), {"price_id": str(price_of(theirs).pk)}, format="json")

    assert (response.status_code, errors_of(response)) == (400, [("price_id", "not_found")])


def test_changing_an_ended_subscription_is_a_conflict(api, basic, plans):
    assert api.post(url(basic, "revoke"), {"reason": "fraud"}, format="json").status_code == 200
    before = state(basic)

    response = api.post(url(basic, "change"), {"price_id": str(price_of(plans["pro"]).pk)}, format="json")

    assert (response.status_code, response.json()["code"]) == (409, "subscription_not_changeable")
    assert state(basic) == before


def test_another_organization_cannot_act(make_org, make_api, basic):
    intruder = make_api(make_org("Intruder"))
    before = state(basic)

    for action in ("change", "change/preview", "cancel", "revoke", "pause", "trial/end"):
        assert intruder.post(url(basic, action), {}, format="json").status_code == 404
    assert state(basic) == before


# --- cancel, uncancel, revoke ----------------------------------------------------------------


def test_cancel_and_uncancel(api, basic):
    response = api.post(url(basic, "cancel"), {"reason": "too_expensive", "comment": "Pricey"}, format="json")

    assert response.status_code == 200, response.json()
    data = response.json()
    assert (data["cancel_at_period_end"], data["cancellation_reason"], data["cancellation_comment"]) == (
        True, "too_expensive", "Pricey",
    )  # fmt: skip
    again = api.post(url(basic, "cancel"), {}, format="json")
    assert (again.status_code, again.json()["code"]) == (409, "already_canceling")

    data = api.post(url(basic, "uncancel")).json()
    assert (data["cancel_at_period_end"], data["canceled_at"], data["cancellation_reason"]) == (
        False,
        None,
        "",
    )
    again = api.post(url(basic, "uncancel"))
    assert (again.status_code, again.json()["code"]) == (409, "not_canceling")


def test_unknown_cancellation_reason_is_refused(api, basic):
    before = state(basic)

    response = api.post(url(basic, "cancel"), {"reason": "because"}, format="json")

    assert (response.status_code, errors_of(response)) == (400, [("reason", "invalid_choice")])
    assert state(basic) == before


def test_revoke_ends_now_and_voids_unpaid_orders(api, basic):
    unpaid = Order.objects.create(
        organization=basic.organization, customer=basic.customer, subscription=basic,
        billing_reason="subscription_update", currency="usd", subtotal=100, net=100, total=100, due=100,
        period_start=MIDDLE,
    )  # fmt: skip

    data = api.post(url(basic, "revoke"), {"reason": "chargeback"}, format="json").json()

    assert (data["status"], data["ended_at"]) == ("canceled", MIDDLE.isoformat().replace("+00:00", "Z"))
    unpaid.refresh_from_db()
    assert unpaid.status == "void"
    again = api.post(url(basic, "revoke"), {}, format="json")
    assert (again.status_code, again.json()["code"]) == (409, "subscription_ended")


def test_revoke_reason_is_bounded(api, basic):
    response = api.post(url(basic, "revoke"), {"reason": "x" * 5001}, format="json")

    assert (response.status_code, errors_of(response)) == (400, [("reason", "max_length")])
    assert Subscription.objects.get(pk=basic.pk).status == "active"


# --- pause and resume ------------------------------------------------------------------------


def test_pause_then_undo_the_pause(api, basic):
    data = api.post(url(basic, "pause")).json()
    assert data["pause_at_period_end"] is True
    again = api.post(url(basic, "pause"))
    assert (again.status_code, again.json()["code"]) == (409, "already_pausing")

    data = api.post(url(basic, "resume")).json()

    assert (data["pause_at_period_end"], data["order"]) == (False, None)
    again = api.post(url(basic, "resume"))
    assert (again.status_code, again.json()["code"]) == (409, "not_paused")


def test_resuming_a_paused_subscription_bills_a_new_period(api, basic):
    api.post(url(basic, "pause"))
    with time_machine.travel(basic.current_period_end, tick=False):
        assert renewals.renewals_run().paused == 1
    resume_at = basic.current_period_end + timedelta(days=3)

    with time_machine.travel(resume_at, tick=False):
        response = api.post(url(basic, "resume"))

    data = response.json()
    assert (data["status"], data["current_period_start"]) == (
        "active", resume_at.isoformat().replace("+00:00", "Z"),
    )  # fmt: skip
    assert (data["order"]["status"], data["order"]["subtotal"]) == ("paid", 3000)


# --- trials ----------------------------------------------------------------------------------


@pytest.fixture
def trialing(manual_org, plans):
    return subscribe(manual_org, plans["basic"], trial_days=30)


def test_extend_the_trial(api, trialing):
    new_end = trialing.trial_end + timedelta(days=14)

    response = api.post(url(trialing, "trial"), {"trial_end": new_end.isoformat()}, format="json")

    assert response.status_code == 200, response.json()
    data = response.json()
    assert data["trial_end"] == data["current_period_end"] == new_end.isoformat().replace("+00:00", "Z")


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"trial_end": (MIDDLE - timedelta(days=1)).isoformat()}, ("trial_end", "not_later")),
        ({"trial_end": (START + timedelta(days=20)).isoformat()}, ("trial_end", "not_later")),
        ({"trial_end": "next tuesday"}, ("trial_end", "invalid")),
        ({}, ("trial_end", "required")),
    ],
)
def test_bad_trial_end_is_refused(api, trialing, body, error):
    before = state(trialing)

    response = api.post(url(trialing, "trial"), body, format="json")

    assert (response.status_code, errors_of(response)) == (400, [error])
    assert state(trialing) == before


def test_trial_actions_on_an_active_subscription_are_conflicts(api, basic):
    before = state(basic)
    later = (basic.current_period_end + timedelta(days=5)).isoformat()

    for action, body in (("trial", {"trial_end": later}), ("trial/end", {})):
        response = api.post(url(basic, action), body, format="json")
        assert (response.status_code, response.json()["code"]) == (409, "not_trialing")
    assert state(basic) == before


def test_end_the_trial_now_converts_and_charges(api, trialing):
    data = api.post(url(trialing, "trial/end")).json()

    assert (data["status"], data["trial_end"]) == ("active", MIDDLE.isoformat().replace("+00:00", "Z"))
    order = Order.objects.get(subscription=trialing, billing_reason="subscription_cycle_after_trial")
    assert (order.status, order.total) == ("paid", 3000)


# --- retry payment ---------------------------------------------------------------------------


@pytest.fixture
def unpaid_order(api, basic, plans):
    """An upgrade invoiced while the customer had no payment method: pending, first attempt failed."""
    Customer.objects.filter(pk=basic.customer_id).update(default_payment_method_id="")
    data = api.post(
        url(basic, "change"),
        {"price_id": str(price_of(plans["pro"]).pk), "proration_behavior": "invoice"},
        format="json",
    ).json()
    assert data["order"]["status"] == "pending"
    return Order.objects.get(pk=data["order"]["id"])


def test_retry_payment_charges_the_order_now(api, unpaid_order):
    Customer.objects.filter(pk=unpaid_order.customer_id).update(default_payment_method_id="pm_manual")

    response = api.post(f"/v1/orders/{unpaid_order.pk}/retry_payment", HTTP_IDEMPOTENCY_KEY="retry-1")

    assert response.status_code == 200, response.json()
    data = response.json()
    assert (data["status"], data["due"]) == ("paid", 4800)
    payment = data["latest_payment"]
    assert (payment["status"], payment["trigger"], payment["attempt"], payment["amount"]) == (
        "succeeded", "operator_retry", 2, 4800,
    )  # fmt: skip
    replay = api.post(f"/v1/orders/{unpaid_order.pk}/retry_payment", HTTP_IDEMPOTENCY_KEY="retry-1")
    assert replay.json() == data
    assert Payment.objects.filter(reference=unpaid_order.reference).count() == 2


def test_a_failed_retry_reports_the_decline(api, unpaid_order):
    data = api.post(f"/v1/orders/{unpaid_order.pk}/retry_payment").json()

    assert data["status"] == "pending"
    assert (data["latest_payment"]["status"], data["latest_payment"]["decline_code"]) == (
        "failed", "no_payment_method",
    )  # fmt: skip


def test_retrying_a_paid_order_is_a_conflict(api, basic):
    order = Order.objects.get(subscription=basic)
    payments = Payment.objects.count()

    response = api.post(f"/v1/orders/{order.pk}/retry_payment")

    assert (response.status_code, response.json()["code"]) == (409, "order_not_payable")
    assert Payment.objects.count() == payments


def test_retry_payment_needs_the_orders_write_scope(make_api, manual_org, unpaid_order):
    reader = make_api(manual_org, scopes=["orders:read", "subscriptions:write"])

    response = reader.post(f"/v1/orders/{unpaid_order.pk}/retry_payment")

    assert (response.status_code, response.json()["code"]) == (403, "insufficient_scope")


# --- the OpenAPI document ----------------------------------------------------------------------


def test_actions_are_documented_with_operation_ids():
    paths = APIClient().get("/v1/openapi.json").json()["paths"]
    expected = {
        "/v1/subscriptions/{id}/change/preview": "subscriptions_change_preview",
        "/v1/subscriptions/{id}/change": "subscriptions_change",
        "/v1/subscriptions/{id}/cancel": "subscriptions_cancel",
        "/v1/subscriptions/{id}/uncancel": "subscriptions_uncancel",
        "/v1/subscriptions/{id}/revoke": "subscriptions_revoke",
        "/v1/subscriptions/{id}/pause": "subscriptions_pause",
        "/v1/subscriptions/{id}/resume": "subscriptions_resume",
        "/v1/subscriptions/{id}/trial": "subscriptions_trial_extend",
        "/v1/subscriptions/{id}/trial/end": "subscriptions_trial_end",
        "/v1/orders/{id}/retry_payment": "orders_retry_payment",
    }
    for path, operation_id in expected.items():
        operation = paths[path]["post"]
        assert operation["operationId"] == operation_id
        has_key = any(p["name"] == "Idempotency-Key" for p in operation.get("parameters", []))
        assert has_key == (operation_id != "subscriptions_change_preview"), path
        assert {"400", "404", "409"} <= set(operation["responses"])
