"""The organization page shows the merchant's balance (and why available is what it is);
fees are shown as money, not minor units."""

import re
from datetime import datetime, timedelta

import pytest
import time_machine
from django.urls import reverse

from accounts.models import Organization
from billing.disputes.services import dispute_apply_snapshot
from billing.refunds.services import refund_create
from tests.disputes import events
from tests.disputes.conftest import pay_order

pytestmark = pytest.mark.django_db

T0 = datetime.fromisoformat("2027-03-01T12:00:00+00:00")


@pytest.fixture
def merchant(org):
    Organization.objects.filter(pk=org.pk).update(
        payment_processor="manual", platform_fee_bps=500, platform_fee_fixed=30, payout_hold_days=7
    )
    org.refresh_from_db()
    return org


def page(client, org) -> str:
    response = client.get(reverse("admin:accounts_organization_change", args=[org.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_the_balance_is_shown_formatted_with_what_explains_a_negative_available(
    client, operator, merchant, customer
):
    with time_machine.travel(T0, tick=False):
        pay_order(merchant, customer, amount=1_000, tax=0)  # merchant gets 920, settled by day 8
    with time_machine.travel(T0 + timedelta(days=8), tick=False):
        refunded, _ = pay_order(merchant, customer, amount=10_000, tax=0)  # 9470 held
        _, disputed = pay_order(merchant, customer, amount=5_000, tax=0)  # 4720 held
        refund_create(order=refunded, amount=None, reason="requested_by_customer")
        dispute_apply_snapshot(
            payload=events.dispute(disputed, withdrawn=True),
            observed_at=events.T0_AT,
            event_type="charge.dispute.created",
        )
    with time_machine.travel(T0 + timedelta(days=8, hours=1), tick=False):
        client.force_login(operator)  # a session of that day
        html = page(client, merchant)

    row = re.search(r'<tr data-currency="usd">(.*?)</tr>', html, re.S).group(1)
    cells = re.findall(r'<td class="bo-num">\s*(?:<strong>)?(.*?)(?:</strong>)?\s*</td>', row)
    # balance, available (negative: refunds and disputes beyond what had settled), pending, in transit
    assert cells == ["-$13.90", "-$155.80", "$141.90", "$0.00"]
    explains = re.search(r'data-explains="usd">(.*?)</tr>', html, re.S).group(1)
    assert "$9.20 settled before 2027-03-02 13:00 UTC" in explains
    assert "refunds -$100.00" in explains and "disputes -$65.00" in explains
    assert "Pending $141.90" in explains


def test_fees_are_shown_as_money(backoffice, merchant):
    html = page(backoffice, merchant)
    assert "5% + $0.30 per USD payment" in html
    assert "$15.00 per USD dispute" in html
    listing = backoffice.get(reverse("admin:accounts_organization_changelist")).content.decode()
    assert "5% + $0.30" in listing and "5% + 30<" not in listing


def test_an_organization_without_sales_has_no_balance_yet(backoffice, org):
    assert "No balance yet" in page(backoffice, org)
