"""The audit log shows each object as it is now (its label and current status, not the ones
written with the entry), amounts formatted, and who acted: an operator, an API token or the
system."""

import pytest
from django.urls import reverse

from accounts.models import AccessToken
from billing.refunds import services as refund_services
from billing.refunds.models import Refund
from core.audit import audit_record, system_actor
from core.models import AuditEntry
from tests.refunds.helpers import buy

pytestmark = pytest.mark.django_db(transaction=True)  # a refund calls the processor after commit

AUDIT_LOG = reverse("admin:core_auditentry_changelist")


@pytest.fixture
def order(manual_org, make_product):
    return buy(manual_org, make_product("E-book"))  # 2000 + 400 VAT, manual processor


def html_of(response) -> str:
    assert response.status_code == 200
    return response.content.decode()


def test_entries_show_formatted_money_and_the_current_status(backoffice, operator, order, make_api):
    refund = refund_services.refund_request(
        order=order, amount=500, reason="requested_by_customer", comment="Goodwill", actor=operator
    )
    # An entry written before labels were fixed: minor units and the status of the moment.
    AuditEntry.objects.filter(pk=AuditEntry.objects.get(action="refund.create").pk).update(
        object_repr="refund 500 usd (pending)"
    )
    api = make_api(order.organization)
    token = AccessToken.objects.filter(organization=order.organization).latest("created_at")
    response = api.post(
        f"/v1/customers/{order.customer_id}/wallet/adjustments",
        {"amount": 1250, "currency": "usd", "reason": "Goodwill credit"},
        format="json",
    )
    assert response.status_code in (200, 201), response.json()
    Refund.objects.filter(pk=refund.pk).update(status="failed")  # the object moved on since

    html = html_of(backoffice.get(AUDIT_LOG))

    assert "refund of $5.00" in html and "now failed" in html
    assert "refund 500 usd" not in html and "(pending)" not in html
    assert "amount $5.00" in html and "amount $12.50" in html
    assert "1250" not in html
    assert f"API token test ({token.prefix}…)" in html
    assert "operator@recur.test" in html
    wallet = AuditEntry.objects.get(action="wallet.adjust")
    assert (wallet.actor_kind, wallet.actor_id) == ("token", None)

    detail = html_of(backoffice.get(reverse("admin:core_auditentry_change", args=[wallet.pk])))
    assert "amount $12.50" in detail and f"API token test ({token.prefix}…)" in detail


def test_system_entries_and_gone_objects(backoffice, order):
    audit_record(actor=system_actor("renewals"), action="order.note", target=order)
    entry = AuditEntry.objects.get(action="order.note")
    assert entry.actor_display == "system (renewals)" and entry.actor_kind == "system"
    AuditEntry.objects.create(action="thing.gone", object_type="orders.order", object_id="not-a-uuid")

    html = html_of(backoffice.get(AUDIT_LOG))
    assert "system (renewals)" in html
    assert "now paid" in html  # the order's current status
    assert "not-a-uuid (no longer exists)" in html


def test_the_audit_log_costs_a_query_per_object_type(backoffice, order, django_assert_max_num_queries):
    for i in range(40):
        audit_record(actor=system_actor("jobs"), action=f"order.note{i}", target=order)
        audit_record(actor=system_actor("jobs"), action=f"customer.note{i}", target=order.customer)
    with django_assert_max_num_queries(14):
        html_of(backoffice.get(AUDIT_LOG))
