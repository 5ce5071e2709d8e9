"""The refund modal on the backoffice order page (preview, form errors, submit, roles), the
order page's refunds table and the refund list."""

import pytest
from django.urls import reverse

from billing.ledger.models import LedgerTransaction
from billing.refunds.models import Refund
from core.models import AuditEntry
from tests.refunds.helpers import buy, nothing_changed_snapshot

pytestmark = pytest.mark.django_db(transaction=True)  # a refund calls the processor after commit


@pytest.fixture
def order(manual_org, make_product):
    return buy(manual_org, make_product("E-book"))  # 2000 + 400 VAT, manual processor


def refund_url(order) -> str:
    return reverse("admin:orders_order_refund", args=[order.pk])


def change_url(order) -> str:
    return reverse("admin:orders_order_change", args=[order.pk])


def test_modal_previews_and_refunds(backoffice, htmx, operator, order):
    page = backoffice.get(change_url(order)).content.decode()
    assert refund_url(order) in page and "No refunds." in page

    opened = backoffice.get(refund_url(order), **htmx)
    assert opened.status_code == 200
    assert opened.context["form"]["amount"].value() == "24.00"  # everything refundable, in major units
    assert opened.context["preview"]["merchant_balance_change_minor"] == -2000  # the full refund's

    data = {"amount": "12.00", "reason": "duplicate", "comment": "charged twice"}
    previewed = backoffice.post(refund_url(order), {**data, "_preview": "1"}, **htmx)
    assert previewed.status_code == 200 and "HX-Redirect" not in previewed.headers
    preview = previewed.context["preview"]
    assert preview["merchant_balance_change_minor"] == -1000  # 1200 less its 200 tax
    html = previewed.content.decode()
    assert "-$10.00" in html and "$2.00" in html and "partially refunded" in html
    assert nothing_changed_snapshot(order)[:2] == (0, 1)  # nothing written (only the payment posting)

    done = backoffice.post(refund_url(order), data, **htmx)
    assert done.headers["HX-Redirect"] == change_url(order)
    refund = Refund.objects.get()
    assert (refund.amount, refund.tax_amount, refund.status, refund.reason) == (
        1200,
        200,
        "succeeded",
        "duplicate",
    )
    assert refund.created_by == operator
    order.refresh_from_db()
    assert (order.status, order.refunded_amount) == ("partially_refunded", 1200)
    entry = AuditEntry.objects.get(action="refund.create")
    assert (entry.actor, entry.object_id, entry.reason) == (operator, str(refund.pk), "charged twice")
    assert entry.data["amount"] == 1200

    page = backoffice.get(change_url(order)).content.decode()
    assert f'data-refund="{refund.pk}"' in page and "$12.00" in page


def test_too_much_is_a_form_error_and_changes_nothing(backoffice, htmx, order):
    before = nothing_changed_snapshot(order)
    for amount, message in (
        ("24.01", "At most $24.00"),
        ("12.345", "allows at most 2 decimal places"),
        ("abc", "is not an amount"),
    ):
        for extra in ({}, {"_preview": "1"}):
            response = backoffice.post(
                refund_url(order), {"amount": amount, "reason": "other", **extra}, **htmx
            )
            assert response.status_code == 200 and "HX-Redirect" not in response.headers
            assert message in " ".join(response.context["form"].errors["amount"])
    assert nothing_changed_snapshot(order) == before


def test_support_cannot_refund_finance_can(client, make_staff, htmx, order):
    client.force_login(make_staff("support"))
    assert client.get(refund_url(order), **htmx).status_code == 403
    assert client.post(refund_url(order), {"amount": "1.00", "reason": "other"}, **htmx).status_code == 403
    page = client.get(change_url(order)).content.decode()
    assert refund_url(order) not in page  # no button either
    assert not Refund.objects.exists() and LedgerTransaction.objects.filter(type="refund").count() == 0

    client.force_login(make_staff("finance"))
    done = client.post(refund_url(order), {"amount": "1.00", "reason": "other"}, **htmx)
    assert "HX-Redirect" in done.headers
    assert Refund.objects.get().amount == 100


def test_refund_list_filters_and_search(backoffice, order, operator):
    from billing.refunds import services

    services.refund_create(order=order, amount=500, reason="other", actor=operator)
    url = reverse("admin:refunds_refund_changelist")
    assert backoffice.get(url, {"status__exact": "pending"}).context["cl"].result_count == 1
    assert backoffice.get(url, {"reason__exact": "duplicate"}).context["cl"].result_count == 0
    assert backoffice.get(url, {"currency": "usd"}).context["cl"].result_count == 1
    order.refresh_from_db()
    assert backoffice.get(url, {"q": order.invoice_number}).context["cl"].result_count == 1
    assert backoffice.get(url, {"q": str(order.pk)}).context["cl"].result_count == 1
    assert backoffice.get(url, {"q": "NOPE-00001"}).context["cl"].result_count == 0
    refund = Refund.objects.get()
    detail = backoffice.get(reverse("admin:refunds_refund_change", args=[refund.pk]))
    assert detail.status_code == 200 and "$5.00" in detail.content.decode()
