"""The customer timeline names the product each subscription and order was for, and tells a
cancellation still to come ("active until …") from a subscription that has ended."""

from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse

from billing.subscriptions import renewals, services
from core.backoffice.timeline import customer_timeline
from tests.subscriptions.scenario import MIDDLE, START, price_of, subscribe

pytestmark = pytest.mark.django_db(transaction=True)  # payments refuse to run inside a transaction


def story(customer) -> list[tuple[str, str]]:
    return [(e.title, e.detail) for e in customer_timeline(customer)]


def test_products_and_a_scheduled_cancel_then_the_end(manual_org, plans, backoffice):
    upgraded = subscribe(manual_org, plans["basic"])
    with time_machine.travel(MIDDLE, tick=False):
        _, invoice = services.subscription_change(
            subscription=upgraded, price_id=price_of(plans["pro"]).pk, proration_behavior="invoice"
        )
        services.subscription_cancel(subscription=upgraded, reason="too_expensive", comment="Pricey")
        customer = upgraded.customer
        events = dict(story(customer))
    invoice.refresh_from_db()  # numbered once paid, after commit

    # Started on Basic, now on Pro: the start says both; the change invoice names Pro.
    assert events["Subscribed to Basic"] == "now Pro, $90.00 / month"
    assert events[f"Order {invoice.invoice_number} paid"] == "$40.00 · Pro · subscription update"
    first = upgraded.orders.get(billing_reason="subscription_create")
    assert events[f"Order {first.invoice_number} paid"] == "$30.00 · Basic · subscription create"
    assert events["Cancellation of Pro scheduled"] == "active until 2027-05-01 · too expensive · “Pricey”"
    assert "Subscription to Pro ended" not in events

    with time_machine.travel(START + timedelta(days=30, minutes=1), tick=False):
        renewals.renewals_run()
        ended = dict(story(customer))
    html = backoffice.get(reverse("admin:accounts_customer_change", args=[customer.pk])).content.decode()
    assert ended["Cancellation of Pro scheduled"] == "ended 2027-05-01 · too expensive · “Pricey”"
    assert ended["Subscription to Pro ended"] == "at the end of its period"
    assert html.index("Subscription to Pro ended") < html.index("Cancellation of Pro scheduled")


def test_an_immediate_end_is_one_line(manual_org, plans):
    sub = subscribe(manual_org, plans["basic"])
    with time_machine.travel(MIDDLE, tick=False):
        services.subscription_revoke(subscription=sub, reason="fraud")
        events = story(sub.customer)
    assert ("Subscription to Basic ended", "canceled immediately · “fraud”") in events
    assert not any(title.startswith("Cancellation of") for title, _ in events)
