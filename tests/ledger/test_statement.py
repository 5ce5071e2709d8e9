"""The backoffice: the merchant statement (page and CSV), the ledger transaction and
reconciliation run pages, and the dashboard cards."""

import csv
import io
from datetime import datetime, timedelta

import pytest
import time_machine
from django.urls import reverse

from accounts.models import Organization
from billing.ledger.models import LedgerTransaction
from billing.ledger.postings import ledger_post_balance_adjustment
from billing.ledger.reconciliation import reconciliation_run
from billing.orders.models import Order
from billing.orders.services import Line, order_create
from core import clock

pytestmark = pytest.mark.django_db

T0 = datetime.fromisoformat("2027-05-10T09:00:00+00:00")
STATEMENT = "/backoffice/ledger/ledgertransaction/statement/"


@pytest.fixture
def merchant(org):
    Organization.objects.filter(pk=org.pk).update(platform_fee_bps=500, platform_fee_fixed=30)
    org.refresh_from_db()
    return org


def paid(org, customer, amount, currency="usd"):
    return order_create(
        organization=org, customer=customer, billing_reason="purchase", currency=currency,
        lines=[Line(label="Thing", amount=amount)], paid=True,
    )  # fmt: skip


def adjust(org, amount, key, at):
    with time_machine.travel(at, tick=False):
        return ledger_post_balance_adjustment(
            organization=org, amount=amount, currency="usd", idempotency_key=key, description=f"adjust {key}"
        )


@pytest.fixture
def history(merchant, customer, make_org):
    with time_machine.travel(T0 - timedelta(days=20), tick=False):
        paid(merchant, customer, 10_000)  # before the range: merchant 9470
    with time_machine.travel(T0, tick=False):
        in_range = paid(merchant, customer, 4_000)  # 4000 - 230 = 3770
    adjust(merchant, -1_200, "a1", T0 + timedelta(days=1))
    adjust(merchant, 300, "a2", T0 + timedelta(days=2))
    with time_machine.travel(T0 + timedelta(days=2, hours=1), tick=False):
        paid(merchant, customer, 5_000, currency="eur")  # another currency: not on the usd statement
    adjust(merchant, -50, "after", T0 + timedelta(days=30))  # after the range
    other = make_org("Other")
    adjust(other, 999, "other", T0 + timedelta(days=1))  # another merchant
    return in_range


def statement_params(org, **extra):
    return {
        "organization": str(org.pk),
        "currency": "usd",
        "start": "2027-05-10",
        "end": "2027-05-20",
        **extra,
    }


def test_statement_page_and_csv(backoffice, merchant, history):
    response = backoffice.get(STATEMENT, statement_params(merchant))
    assert response.status_code == 200
    statement = response.context["statement"]
    assert statement.opening == 9470
    lines = response.context["lines"]
    assert [(line["type_code"], line["amount_raw"]) for line in lines] == [
        ("payment", 3770),
        ("balance_adjustment", -1200),
        ("balance_adjustment", 300),
    ]
    balances = [line["balance"] for line in lines]
    assert balances == ["$132.40", "$120.40", "$123.40"]  # 9470 + 3770 - 1200 + 300
    assert statement.closing == 12_340
    assert statement.totals == {"balance_adjustment": -900, "payment": 3770}
    html = response.content.decode()
    assert "$94.70" in html and "$123.40" in html  # opening and closing
    assert history.invoice_number in html  # the order links to its page
    assert reverse("admin:orders_order_change", args=[history.pk]) in html
    assert "Download CSV" in html

    csv_response = backoffice.get(STATEMENT, statement_params(merchant, format="csv"))
    assert csv_response["Content-Type"] == "text/csv"
    assert "attachment" in csv_response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(csv_response.streaming_content).decode())))
    header, opening, *body, closing = rows
    assert header[:3] == ["date", "type", "description"]
    assert (opening[1], opening[7]) == ("opening_balance", "94.70")
    assert (closing[1], closing[7]) == ("closing_balance", "123.40")
    assert [(r[1], r[6], r[7]) for r in body] == [
        ("payment", "37.70", "132.40"),
        ("balance_adjustment", "-12.00", "120.40"),
        ("balance_adjustment", "3.00", "123.40"),
    ]
    assert body[0][4] == str(history.pk) and body[0][5] == history.invoice_number


def test_statement_form_errors_and_empty_ranges(backoffice, merchant, history):
    response = backoffice.get(STATEMENT, statement_params(merchant, start="2027-05-20", end="2027-05-10"))
    assert response.status_code == 200 and response.context["statement"] is None
    assert "The end date is before the start." in response.content.decode()
    response = backoffice.get(STATEMENT, statement_params(merchant, currency="zzz"))
    assert response.context["statement"] is None and "Unknown currency." in response.content.decode()

    quiet = backoffice.get(STATEMENT, statement_params(merchant, start="2027-01-01", end="2027-01-31"))
    assert quiet.context["statement"].opening == quiet.context["statement"].closing == 0
    assert "No movement of the balance in this period." in quiet.content.decode()
    # Without a currency, the organization's default one.
    default = backoffice.get(STATEMENT, statement_params(merchant, currency=""))
    assert default.context["statement"].currency == merchant.default_currency
    assert backoffice.get(STATEMENT).status_code == 200  # the empty form
    # The organization page's link: this month's statement in the default currency.
    linked = backoffice.get(STATEMENT, {"organization": str(merchant.pk)}).context["statement"]
    today = clock.now().date()
    assert (linked.currency, linked.start.date(), linked.end.date()) == (
        "usd", today.replace(day=1), today + timedelta(days=1),
    )  # fmt: skip
    missing = backoffice.get(STATEMENT, {"currency": "usd"})
    assert missing.context["statement"] is None and "This field is required." in missing.content.decode()


def test_statement_needs_the_view_permission(client, merchant, history):
    from django.contrib.auth.models import Group

    from accounts.models import User
    from core.roles import roles_install

    nobody = User.objects.create_user("nobody@recur.test", "pw", is_staff=True)
    client.force_login(nobody)
    assert client.get(STATEMENT, statement_params(merchant)).status_code == 403
    roles_install()
    support = User.objects.create_user("support@recur.test", "pw", is_staff=True)
    support.groups.set(Group.objects.filter(name="support"))
    client.force_login(support)
    assert client.get(STATEMENT, statement_params(merchant)).status_code == 200


def test_statement_linked_from_the_organization_and_the_transactions(backoffice, merchant, history):
    page = backoffice.get(reverse("admin:accounts_organization_change", args=[merchant.pk])).content.decode()
    assert f"{STATEMENT}?organization={merchant.pk}" in page
    listing = backoffice.get(
        reverse("admin:ledger_ledgertransaction_changelist") + f"?organization={merchant.pk}"
    )
    assert listing.status_code == 200
    assert STATEMENT in listing.content.decode()
    assert len(listing.context["cl"].result_list) == 6  # the merchant's only, both currencies


def test_transaction_list_and_detail(backoffice, merchant, history, django_assert_max_num_queries):
    url = reverse("admin:ledger_ledgertransaction_changelist")
    with django_assert_max_num_queries(15):
        response = backoffice.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert "-$12.00" in html  # merchant amount of the adjustment
    assert backoffice.get(url, {"type__exact": "payment"}).context["cl"].result_count == 3
    order_tx = LedgerTransaction.objects.get(order=history)
    assert list(backoffice.get(url, {"q": str(history.pk)}).context["cl"].result_list) == [order_tx]
    detail = backoffice.get(reverse("admin:ledger_ledgertransaction_change", args=[order_tx.pk]))
    assert detail.status_code == 200
    text = detail.content.decode()
    assert "merchant_balance" in text and "processor_cash" in text and "$40.00" in text
    # Read-only: no add, no change, no delete.
    assert (
        backoffice.post(reverse("admin:ledger_ledgertransaction_delete", args=[order_tx.pk])).status_code
        == 403
    )


def dashboard_cards(client) -> dict:
    return {card.key: card for card in client.get(reverse("admin:index")).context["cards"]}


def test_dashboard_shows_the_last_reconciliation_and_platform_revenue(backoffice, merchant, customer):
    assert dashboard_cards(backoffice)["reconciliation"].value == "never run"
    paid(merchant, customer, 10_000)  # platform fee 530
    paid(merchant, customer, 2_000, currency="eur")  # 130
    with time_machine.travel(datetime.now().astimezone() - timedelta(days=40), tick=False):
        paid(merchant, customer, 50_000)  # too old for the card
    run = reconciliation_run()
    cards = dashboard_cards(backoffice)
    assert (cards["reconciliation"].value, cards["reconciliation"].tone) == ("OK", "good")
    assert cards["reconciliation"].url == reverse("admin:ledger_reconciliationrun_change", args=[run.pk])
    assert cards["platform_revenue_30d"].value == "$5.30"
    assert "€1.30" in cards["platform_revenue_30d"].hint

    Order.objects.create(
        organization=merchant, customer=customer, status="paid", billing_reason="purchase", currency="usd",
        subtotal=100, net=100, total=100, due=100, platform_fee=10,
    )  # fmt: skip  # paid, never posted
    bad = reconciliation_run()
    card = dashboard_cards(backoffice)["reconciliation"]
    assert (card.value, card.tone) == ("1 discrepancy", "bad")
    detail = backoffice.get(card.url)
    assert detail.status_code == 200 and "paid_order_without_posting" in detail.content.decode()
    assert bad.pk != run.pk
    listing = backoffice.get(reverse("admin:ledger_reconciliationrun_changelist"))
    assert listing.status_code == 200 and listing.context["cl"].result_count == 2
