"""The subscription's whole story on its backoffice page: one subscription lived through end to
end (created at checkout, changed over the API and by an operator, canceled with a reason and
uncanceled, refunded, renewed, declined and dunned), then its timeline read line by line, with
who did each thing, and the page rendered for a support operator."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse

from accounts.models import AccessToken
from billing.orders.models import Order
from billing.payments.manual import ManualProcessor
from billing.payments.models import Payment
from billing.payments.processor import ChargeOutcome
from billing.refunds import services as refund_services
from billing.subscriptions import dunning, renewals
from billing.subscriptions.models import Subscription
from billing.subscriptions.timeline import subscription_timeline
from core.models import AuditEntry
from tests.subscriptions.scenario import START, price_of, subscribe

pytestmark = pytest.mark.django_db(transaction=True)  # payments refuse to run inside a transaction

T_API_CHANGE = START + timedelta(days=10)  # 20 of 30 days left
T_OPERATOR_CHANGE = START + timedelta(days=12)
T_CANCEL = START + timedelta(days=13)
T_UNCANCEL = START + timedelta(days=14)
T_REFUND = START + timedelta(days=15)
T_RENEWAL = START + timedelta(days=30, minutes=1)  # April has 30 days


def action_url(obj, name: str) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_{name}", args=[obj.pk])


def decline(monkeypatch):
    """The processor declines every charge from now on (the edge, not our code)."""

    def declined(self, **kwargs):
        return ChargeOutcome(
            status="failed",
            payment_intent_id=f"pi_{kwargs['idempotency_key']}",
            decline_code="card_declined",
            decline_message="Your card was declined.",
        )

    monkeypatch.setattr(ManualProcessor, "payment_intent_create", declined)


@pytest.fixture
def lived(manual_org, plans, make_api, make_staff, client, monkeypatch):
    """A Basic subscription taken through its first month and its first dunning retry."""
    htmx = {"HTTP_HX_REQUEST": "true"}
    support = make_staff("support", email="support@recur.test")
    finance = make_staff("finance", email="finance@recur.test")
    api = make_api(manual_org)
    token = AccessToken.objects.get(organization=manual_org)
    sub = subscribe(manual_org, plans["basic"])
    path = f"/v1/subscriptions/{sub.pk}"

    with time_machine.travel(T_API_CHANGE, tick=False):
        body = {"price_id": str(price_of(plans["pro"]).pk), "proration_behavior": "invoice"}
        assert api.post(f"{path}/change", body, format="json").status_code == 200
    with time_machine.travel(T_OPERATOR_CHANGE, tick=False):
        client.force_login(finance)  # changing the plan bills: finance's
        data = {"price_id": price_of(plans["basic"]).pk, "seats": "", "proration_behavior": "next_period"}
        assert client.post(action_url(sub, "change_plan"), data, **htmx).headers["HX-Redirect"]
    with time_machine.travel(T_CANCEL, tick=False):
        client.force_login(support)
        data = {"reason": "too_expensive", "comment": "Pro was too much for us"}
        assert client.post(action_url(sub, "cancel"), data, **htmx).headers["HX-Redirect"]
    with time_machine.travel(T_UNCANCEL, tick=False):
        assert api.post(f"{path}/uncancel").status_code == 200
    invoice = Order.objects.get(subscription=sub, billing_reason="subscription_update", status="paid")
    with time_machine.travel(T_REFUND, tick=False):
        refund_services.refund_request(
            order=invoice, amount=500, reason="requested_by_customer", comment="Goodwill", actor=finance
        )

    decline(monkeypatch)
    with time_machine.travel(T_RENEWAL, tick=False):
        assert renewals.renewals_run().cycled == 1
    renewal = Order.objects.get(subscription=sub, billing_reason="subscription_cycle")
    first_retry = renewal.next_payment_attempt_at
    with time_machine.travel(first_retry, tick=False):
        assert dunning.dunning_run() == 1
    renewal.refresh_from_db()
    return {
        "sub": sub,
        "token": token,
        "support": support,
        "invoice": invoice,
        "renewal": renewal,
        "first_retry": first_retry,
    }


def lines(events) -> list[tuple[str, str, str]]:
    return [(e.kind, e.title, e.actor) for e in events]


def test_the_timeline_tells_the_whole_story_with_who_did_what(lived):
    sub, renewal, invoice = lived["sub"], lived["renewal"], lived["invoice"]
    token = f"API token test ({lived['token'].prefix}…)"
    customer = "customer sub@example.com"
    with time_machine.travel(lived["first_retry"] + timedelta(minutes=1), tick=False):
        events = subscription_timeline(sub)

    assert lines(events) == [
        ("dunning", "Dunning retry 1: payment of $30.00 failed", "system (dunning)"),
        ("dunning", "Past due: a payment failed", "system (dunning)"),
        ("payment", "Payment of $30.00 failed", "system (renewals)"),
        ("order", "Renewed: period 2027-05-01 → 2027-06-01 billed", "system (renewals)"),
        ("refund", "Refund of $5.00 succeeded", "finance@recur.test"),
        ("subscription", "Cancellation withdrawn", token),
        ("cancel", "Cancellation scheduled at the period end", "support@recur.test"),
        ("change", "Changed: plan Pro → Basic", "finance@recur.test"),
        ("payment", "Payment of $40.00 succeeded", token),
        ("order", "Change invoiced", token),
        ("change", "Changed: plan Basic → Pro", token),
        ("payment", "Payment of $30.00 succeeded", customer),
        ("order", "First order", customer),
        ("subscription", "Subscribed to Basic", customer),
    ]
    by_title = {e.title: e for e in events}
    # A change says from/to and its proration lines, formatted.
    upgrade = by_title["Changed: plan Basic → Pro"]
    assert upgrade.detail.startswith("$30.00 / month → $90.00 / month · billed now · ")
    assert (
        "Unused time on Basic -$20.00" in upgrade.detail and "Remaining time on Pro +$60.00" in upgrade.detail
    )
    assert f"order {invoice.invoice_number}, $40.00" in upgrade.detail
    downgrade = by_title["Changed: plan Pro → Basic"]
    assert downgrade.detail == "$90.00 / month → $30.00 / month · from the next period, 2027-05-01"
    cancel = by_title["Cancellation scheduled at the period end"]
    assert cancel.detail == "active until 2027-05-01 · reason: too expensive · “Pro was too much for us”"
    # The dunning line says when the next attempt is; the first failure says why.
    retry = events[0]
    assert "Your card was declined." in retry.detail
    assert f"next attempt {renewal.next_payment_attempt_at:%Y-%m-%d %H:%M} UTC" in retry.detail
    assert "Goodwill" in by_title["Refund of $5.00 succeeded"].detail
    assert not re.search(r"\b(3000|9000|4000|500)\b", " ".join(e.detail + e.title for e in events))

    # Convergence: running the jobs again changes nothing, so the story stays the same.
    with time_machine.travel(lived["first_retry"] + timedelta(minutes=1), tick=False):
        assert renewals.renewals_run().cycled == 0
        assert dunning.dunning_run() == 0
        assert lines(subscription_timeline(sub)) == lines(events)


def test_the_subscription_page_shows_the_timeline_to_support(lived, client):
    client.force_login(lived["support"])
    response = client.get(reverse("admin:subscriptions_subscription_change", args=[lived["sub"].pk]))
    assert response.status_code == 200
    html = response.content.decode()
    timeline = html[html.index('id="timeline"') :]
    titles = [
        "Dunning retry 1: payment of $30.00 failed",
        "Renewed: period 2027-05-01 → 2027-06-01 billed",
        "Refund of $5.00 succeeded",
        "Cancellation withdrawn",
        "Cancellation scheduled at the period end",
        "Changed: plan Basic → Pro",
        "Subscribed to Basic",
    ]
    positions = [timeline.index(title) for title in titles]
    assert positions == sorted(positions)
    assert "by <span data-actor>support@recur.test</span>" in timeline
    assert f"by <span data-actor>API token test ({lived['token'].prefix}…)</span>" in timeline
    assert "by <span data-actor>system (dunning)</span>" in timeline
    assert html.index('name="_save"') < html.index('id="timeline"') if 'name="_save"' in html else True


def test_timeline_queries_do_not_grow_with_history(manual_org, plans, django_assert_max_num_queries):
    sub = subscribe(manual_org, plans["basic"])
    Subscription.objects.filter(pk=sub.pk).update(cancel_at_period_end=False)
    for i in range(40):
        order = Order.objects.create(
            organization=manual_org, customer=sub.customer, subscription=sub, billing_reason="subscription_cycle",
            currency="usd", subtotal=3000, net=3000, total=3000, due=3000,
            period_start=START + timedelta(days=31 * (i + 1)), period_end=START + timedelta(days=31 * (i + 2)),
        )  # fmt: skip
        for attempt in (1, 2):
            Payment.objects.create(
                organization=manual_org, customer=sub.customer, reference=order.reference, attempt=attempt,
                trigger="cycle" if attempt == 1 else "dunning_retry", processor="manual", status="failed",
                amount=3000, currency="usd", idempotency_key=f"{order.reference}:attempt:{attempt}",
            )  # fmt: skip
        AuditEntry.objects.create(
            actor_kind="token", actor_label=f"t{i}", action="subscription.pause", object_type="subscriptions.subscription",
            object_id=str(sub.pk),
        )  # fmt: skip

    with django_assert_max_num_queries(
        9
    ):  # the subscription, audit, orders, payments, wallet, refunds x2, disputes
        events = subscription_timeline(sub, limit=100)
    assert len(events) == 100  # of 163: the newest, each source read up to the limit
    assert {e.kind for e in events} >= {"order", "payment", "dunning", "subscription"}
