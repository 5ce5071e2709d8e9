"""The backoffice's dispute pages: list (filters, search, evidence deadlines), the read-only
detail with its ledger postings and snapshot, the dashboard card, and who may see them."""

import re

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from accounts.models import User
from billing.disputes.backoffice import disputes_table
from billing.disputes.services import dispute_apply_snapshot
from core.roles import roles_install
from tests.disputes import events
from tests.disputes.conftest import pay_order

pytestmark = pytest.mark.django_db

LIST = reverse("admin:disputes_dispute_changelist")


def open_dispute(payment, status="needs_response", **options):
    return dispute_apply_snapshot(
        payload=events.dispute(payment, status, **options),
        observed_at=events.T0_AT,
        event_type="charge.dispute.created",
    )


@pytest.fixture
def disputes(org, customer):
    _, first = pay_order(org, customer)
    _, second = pay_order(org, customer, amount=5_000, tax=0)
    _, third = pay_order(org, customer, amount=7_000, tax=0, currency="eur")
    _, fourth = pay_order(org, customer, amount=2_000, tax=0)
    return {
        "soon": open_dispute(first, id="dp_soon", withdrawn=True, due_by=events.evidence_due_in(days=2.2)),
        "overdue": open_dispute(
            second, id="dp_overdue", reason="duplicate", due_by=events.evidence_due_in(days=-1)
        ),
        "later": open_dispute(third, "warning_needs_response", id="dp_later", reason="general"),
        "won": open_dispute(fourth, "won", id="dp_won", withdrawn=True, reinstated=True),
    }


def row_of(html: str, processor_id: str) -> str:
    match = re.search(rf"<tr[^>]*>(?:(?!</tr>).)*{processor_id}(?:(?!</tr>).)*</tr>", html, re.S)
    assert match, f"no row for {processor_id}"
    return match.group(0)


def found(client, **params) -> set[str]:
    response = client.get(LIST, params)
    assert response.status_code == 200
    return {d.processor_dispute_id for d in response.context["cl"].result_list}


def test_list_shows_status_amount_order_customer_and_deadlines(
    backoffice, disputes, django_assert_max_num_queries
):
    with django_assert_max_num_queries(12):
        response = backoffice.get(LIST)
    assert response.status_code == 200
    html = response.content.decode()

    soon = row_of(html, "dp_soon")
    assert "needs response" in soon and "bo-badge--bad" in soon
    assert "$120.00" in soon and "buyer@example.com" in soon
    order = disputes["soon"].order
    assert reverse("admin:orders_order_change", args=[order.pk]) in soon and order.invoice_number in soon
    assert "in 2 days" in soon and "bo-badge--warn" in soon
    assert "overdue" in row_of(html, "dp_overdue")
    assert "in 7 days" in row_of(html, "dp_later") and "€70.00" in row_of(html, "dp_later")
    won = row_of(html, "dp_won")
    assert "won" in won and "overdue" not in won and " days" not in won


def test_list_filters_and_search(backoffice, disputes):
    assert found(backoffice, status="awaiting_response") == {"dp_soon", "dp_overdue", "dp_later"}
    assert found(backoffice, status="won") == {"dp_won"}
    assert found(backoffice, reason="duplicate") == {"dp_overdue"}
    assert found(backoffice, currency="eur") == {"dp_later"}

    soon = disputes["soon"]
    assert found(backoffice, q="dp_overdue") == {"dp_overdue"}
    assert found(backoffice, q=soon.processor_charge_id) == {"dp_soon"}
    assert found(backoffice, q=soon.order.invoice_number) == {"dp_soon"}
    assert found(backoffice, q=soon.order.invoice_number.lower()) == {"dp_soon"}
    assert found(backoffice, q=str(soon.pk)) == {"dp_soon"}
    assert found(backoffice, q="buyer@example.com") == {"dp_soon", "dp_overdue", "dp_later", "dp_won"}
    assert found(backoffice, q="dp_nothing") == set()


def test_detail_shows_money_deadline_order_postings_and_snapshot(backoffice, disputes):
    dispute = disputes["won"]
    url = reverse("admin:disputes_dispute_change", args=[dispute.pk])
    response = backoffice.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert "dp_won" in html and "won" in html and "fraudulent" in html
    assert "$20.00" in html  # the amount
    assert "$15.00" in html  # the fee
    assert "the organization&#x27;s dispute fee (manual payment); given back if won" in html
    assert reverse("admin:orders_order_change", args=[dispute.order_id]) in html
    # The ledger postings: transactions and their entries.
    for kind in ("dispute", "dispute fee", "dispute reversal", "dispute fee reversal"):
        assert f">{kind}<" in html or f">{kind}</a>" in html
    assert f"dispute:{dispute.pk}:withdrawn" in html and f"dispute:{dispute.pk}:reinstated" in html
    assert html.count('data-entry="merchant_balance"') == 4  # the fee given back too
    assert html.count('data-entry="processor_cash"') == 4
    # The raw snapshot, pretty-printed.
    assert "&quot;balance_transactions&quot;" in html and "bo-json" in html
    # Read-only: no save buttons, no delete.
    assert 'name="_save"' not in html
    assert backoffice.get(reverse("admin:disputes_dispute_delete", args=[dispute.pk])).status_code == 403

    inquiry = backoffice.get(reverse("admin:disputes_dispute_change", args=[disputes["later"].pk]))
    assert "inquiry: no money moves" in inquiry.content.decode()
    assert "Nothing posted" in inquiry.content.decode()


def test_a_viewer_role_sees_the_list_and_the_detail(client, disputes):
    roles_install()
    viewer = User.objects.create_user("support@recur.test", "pw", is_staff=True)
    viewer.groups.set(Group.objects.filter(name="support"))
    client.force_login(viewer)

    assert client.get(LIST).status_code == 200
    detail = client.get(reverse("admin:disputes_dispute_change", args=[disputes["soon"].pk]))
    assert detail.status_code == 200 and "dp_soon" in detail.content.decode()
    cards = {card.key: card for card in client.get(reverse("admin:index")).context["cards"]}
    assert "disputes_needing_response" in cards

    nobody = User.objects.create_user("nobody@recur.test", "pw", is_staff=True)
    client.force_login(nobody)
    assert client.get(LIST).status_code == 403


def test_dashboard_card_counts_disputes_needing_response(backoffice, disputes):
    cards = {card.key: card for card in backoffice.get(reverse("admin:index")).context["cards"]}
    card = cards["disputes_needing_response"]
    assert card.title == "Disputes needing response"
    assert card.value == "3"
    assert "€70.00" in card.hint and "$170.00" in card.hint  # per currency
    assert "2 due within 3 days or overdue" in card.hint
    assert card.tone == "bad"
    assert card.url == LIST + "?status=awaiting_response"


def test_dashboard_card_when_nothing_needs_a_response(backoffice):
    card = {c.key: c for c in backoffice.get(reverse("admin:index")).context["cards"]}[
        "disputes_needing_response"
    ]
    assert (card.value, card.tone) == ("0", "good")


def test_the_order_page_table(org, customer, disputes):
    html = disputes_table(disputes["soon"].order)
    assert "dp_soon" in html and "$120.00" in html and "$15.00" in html and "in 2 days" in html
    undisputed, _ = pay_order(org, customer)
    assert "No disputes." in disputes_table(undisputed)
