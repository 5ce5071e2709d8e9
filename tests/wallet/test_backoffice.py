"""Backoffice: the customer page's wallet block and "Adjust wallet", the organization page's
"Adjust balance", and the revoke modal's credit checkbox; refusals show on the form (or 403)
and change nothing."""

from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse

from billing.ledger.models import LedgerEntry, LedgerTransaction
from billing.ledger.selectors import merchant_balance, wallet_balance
from billing.ledger.wallet import wallet_adjust
from core.models import AuditEntry
from tests.subscriptions.scenario import START, subscribe

pytestmark = pytest.mark.django_db(transaction=True)


def action_url(obj, name: str) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_{name}", args=[obj.pk])


def change_url(obj) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])


def ledger_state() -> tuple:
    return LedgerTransaction.objects.count(), LedgerEntry.objects.count(), AuditEntry.objects.count()


def test_customer_page_shows_the_wallet_and_adjusts_it(client, make_staff, htmx, customer):
    finance = make_staff("finance")
    client.force_login(finance)
    wallet_adjust(customer=customer, amount=2500, currency="usd", reason="Credit")

    page = client.get(change_url(customer)).content.decode()
    assert 'data-currency="usd"' in page and "$25.00" in page
    assert f'hx-get="{action_url(customer, "adjust_wallet")}"' in page

    modal = client.get(action_url(customer, "adjust_wallet"), **htmx)
    assert modal.status_code == 200
    assert set(modal.context["form"].fields) == {"amount", "currency", "reason"}
    assert modal.context["form"].initial == {"currency": "usd"}

    before = ledger_state()
    for data, field in (
        ({"amount": "-30.00", "currency": "usd", "reason": "Fix"}, "amount"),  # beyond the balance
        ({"amount": "1.005", "currency": "usd", "reason": "Fix"}, "amount"),  # too many decimals
        ({"amount": "5", "currency": "usd", "reason": ""}, "reason"),
        ({"amount": "5", "currency": "zzz", "reason": "Fix"}, "currency"),
    ):
        refused = client.post(action_url(customer, "adjust_wallet"), data, **htmx)
        assert refused.status_code == 200 and "HX-Redirect" not in refused.headers
        assert field in refused.context["form"].errors, (data, refused.context["form"].errors)
    assert ledger_state() == before

    done = client.post(
        action_url(customer, "adjust_wallet"),
        {"amount": "-10.50", "currency": "usd", "reason": "Fix"},
        **htmx,
    )

    assert done.headers["HX-Redirect"] == change_url(customer)
    assert wallet_balance(customer, "usd") == 1450
    audit = AuditEntry.objects.get(action="wallet.adjust", actor=finance)
    assert (audit.reason, audit.data["amount"]) == ("Fix", -1050)


def test_organization_page_adjusts_the_merchant_balance(client, make_staff, htmx, org):
    finance = make_staff("finance")
    client.force_login(finance)

    page = client.get(change_url(org)).content.decode()
    assert f'hx-get="{action_url(org, "adjust_balance")}"' in page
    assert client.get(action_url(org, "adjust_balance"), **htmx).status_code == 200

    before = ledger_state()
    refused = client.post(action_url(org, "adjust_balance"), {"amount": "12.50", "currency": "usd"}, **htmx)
    assert "reason" in refused.context["form"].errors
    assert ledger_state() == before

    done = client.post(
        action_url(org, "adjust_balance"),
        {"amount": "12.50", "currency": "usd", "reason": "Missed payment"},
        **htmx,
    )

    assert done.headers["HX-Redirect"] == change_url(org)
    assert merchant_balance(org, "usd") == 1250
    audit = AuditEntry.objects.get(action="balance.adjust")
    assert (audit.actor, audit.reason, audit.data["amount"]) == (finance, "Missed payment", 1250)


def test_support_sees_no_adjustment_buttons_and_is_refused(client, make_staff, htmx, org, customer):
    client.force_login(make_staff("support"))
    before = ledger_state()

    assert "adjust_wallet" not in client.get(change_url(customer)).content.decode()
    for obj, name in ((customer, "adjust_wallet"), (org, "adjust_balance")):
        assert client.get(action_url(obj, name), **htmx).status_code == 403
        response = client.post(
            action_url(obj, name), {"amount": "5", "currency": "usd", "reason": "goodwill"}, **htmx
        )
        assert response.status_code == 403
    assert ledger_state() == before
    assert wallet_balance(customer, "usd") == 0 and merchant_balance(org, "usd") == 0


def test_revoke_modal_offers_the_credit_and_grants_it(client, make_staff, htmx, manual_org, plans):
    finance = make_staff("finance")
    basic = subscribe(manual_org, plans["basic"], billing_address={"country": "GB"})  # paid 3600
    with time_machine.travel(START + timedelta(days=15), tick=False):  # r = 1/2
        client.force_login(finance)
        modal = client.get(action_url(basic, "revoke"), **htmx)
        html = modal.content.decode()
        assert "Credit the unused time to the customer&#x27;s balance ($18.00" in html, html
        assert 'name="credit"' in html

        done = client.post(
            action_url(basic, "revoke"), {"reason": "Refund as credit", "credit": "on"}, **htmx
        )

    assert done.headers["HX-Redirect"] == change_url(basic)
    assert wallet_balance(basic.customer, "usd") == 1800
    credit_tx = LedgerTransaction.objects.get(idempotency_key=f"subscription:{basic.pk}:revoke_credit")
    assert {e.account.kind: e.amount for e in credit_tx.entries.select_related("account")} == {
        "customer_wallet": -1800, "tax_payable": 300, "merchant_balance": 1500,
    }  # fmt: skip
    audit = AuditEntry.objects.get(action="subscription.revoke")
    assert (audit.actor, audit.data["credit"], audit.data["credit_tax"]) == (finance, 1800, 300)
