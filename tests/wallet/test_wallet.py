"""The customer wallet: credits over the API, applied by renewals (with the ledger to the
cent), reserved by pending orders, credited by invoiced downgrades and by revocations, and
adjusted by merchants and operators (with every refusal changing nothing)."""

from datetime import timedelta

import pytest
import time_machine

from accounts.models import Customer, Organization
from billing.ledger.adjustments import balance_adjust
from billing.ledger.models import LedgerEntry, LedgerTransaction
from billing.ledger.selectors import merchant_balance, wallet_balance
from billing.ledger.wallet import applicable_amount, wallet_adjust, wallet_available
from billing.orders.models import Order
from billing.orders.services import platform_fee_for
from billing.payments.models import Payment
from billing.subscriptions import dunning, renewals, services
from billing.subscriptions.models import BillingEntry
from core.errors import Forbidden, InvalidInput
from core.models import AuditEntry
from tests.subscriptions.scenario import MIDDLE, START, price_of, subscribe

pytestmark = pytest.mark.django_db(transaction=True)  # payments refuse to run inside a transaction

GB = {"billing_address": {"country": "GB"}}  # 20% VAT, exclusive by default


def wallet_url(customer, tail: str = "") -> str:
    return f"/v1/customers/{customer.pk}/wallet{tail}"


def lines(ledger_tx: LedgerTransaction) -> dict[str, int]:
    """A transaction's entries by account kind."""
    return {e.account.kind: e.amount for e in ledger_tx.entries.select_related("account")}


def renew(subscription) -> None:
    """Run the renewal and dunning jobs when the period ends, then again: nothing new (convergence)."""
    with time_machine.travel(subscription.current_period_end + timedelta(seconds=1), tick=False):
        renewals.renewals_run()
        dunning.dunning_run()
        counts = (Order.objects.count(), Payment.objects.count(), LedgerTransaction.objects.count())
        assert renewals.renewals_run().cycled == 0
        assert dunning.dunning_run() == 0
        assert (Order.objects.count(), Payment.objects.count(), LedgerTransaction.objects.count()) == counts


def ledger_state() -> tuple:
    return (
        LedgerTransaction.objects.count(),
        LedgerEntry.objects.count(),
        AuditEntry.objects.count(),
        Order.objects.count(),
    )


# --- applying the wallet ----------------------------------------------------------------------


def test_a_credit_over_the_api_pays_part_of_the_next_renewal(api, manual_org, plans):
    basic = subscribe(manual_org, plans["basic"], **GB)  # 3000 + 600 VAT
    customer = basic.customer

    with time_machine.travel(MIDDLE, tick=False):
        credited = api.post(
            wallet_url(customer, "/adjustments"),
            {"amount": 1000, "currency": "usd", "reason": "Sorry for the outage"},
            format="json",
            HTTP_IDEMPOTENCY_KEY="goodwill-1",
        )
        replay = api.post(
            wallet_url(customer, "/adjustments"),
            {"amount": 1000, "currency": "usd", "reason": "Sorry for the outage"},
            format="json",
            HTTP_IDEMPOTENCY_KEY="goodwill-1",
        )

    assert credited.status_code == 201, credited.json()
    assert credited.json() == {
        "customer_id": str(customer.pk),
        "balances": [{"currency": "usd", "balance": 1000, "reserved": 0, "available": 1000}],
    }
    assert replay.json() == credited.json() and replay["Idempotent-Replayed"] == "true"
    assert LedgerTransaction.objects.filter(type="wallet_credit").count() == 1
    merchant_before = merchant_balance(manual_org, "usd")

    renew(basic)

    order = Order.objects.get(subscription=basic, billing_reason="subscription_cycle")
    fee = platform_fee_for(organization=manual_org, amount=2600)
    assert (order.status, order.total, order.tax, order.applied_balance, order.due, order.platform_fee) == (
        "paid", 3600, 600, 1000, 2600, fee,
    )  # fmt: skip
    assert fee == 144  # 4% + 40 on the 2600 processed, not on the 3600 total
    assert Payment.objects.get(reference=order.reference).amount == 2600
    payment_tx = LedgerTransaction.objects.get(order=order, type="payment")
    assert lines(payment_tx) == {
        "processor_cash": 2600,  # only what the card paid
        "customer_wallet": 1000,  # the wallet is debited
        "tax_payable": -600,
        "platform_revenue": -144,
        "merchant_balance": -(3600 - 600 - 144),
    }
    assert merchant_balance(manual_org, "usd") == merchant_before + 2856
    assert wallet_balance(customer, "usd") == 0

    listed = api.get(wallet_url(customer, "/transactions")).json()["results"]
    assert [(t["type"], t["amount"], t["order_id"]) for t in listed] == [
        ("payment", -1000, str(order.pk)),
        ("wallet_credit", 1000, None),
    ]
    assert api.get(wallet_url(customer)).json()["balances"] == [
        {"currency": "usd", "balance": 0, "reserved": 0, "available": 0}
    ]
    audit = AuditEntry.objects.get(action="wallet.adjust")
    assert (audit.reason, audit.data["amount"], audit.object_id) == (
        "Sorry for the outage",
        1000,
        str(customer.pk),
    )


def test_a_wallet_covering_the_renewal_pays_it_without_a_payment(manual_org, plans, operator):
    basic = subscribe(manual_org, plans["basic"], **GB)
    wallet_adjust(
        customer=basic.customer, amount=5000, currency="usd", reason="Migration credit", actor=operator
    )

    renew(basic)

    order = Order.objects.get(subscription=basic, billing_reason="subscription_cycle")
    assert (order.status, order.applied_balance, order.due, order.platform_fee) == ("paid", 3600, 0, 0)
    assert order.invoice_number and order.paid_at is not None
    assert not Payment.objects.filter(reference=order.reference).exists()
    assert lines(LedgerTransaction.objects.get(order=order, type="payment")) == {
        "customer_wallet": 3600,
        "tax_payable": -600,
        "merchant_balance": -3000,
    }
    assert wallet_balance(basic.customer, "usd") == 1400
    basic.refresh_from_db()
    assert basic.status == "active"


def test_two_pending_orders_cannot_both_use_the_same_balance(api, manual_org, plans):
    basic = subscribe(manual_org, plans["basic"])
    pro = subscribe(manual_org, plans["pro"])
    customer = basic.customer
    assert pro.customer_id == customer.pk
    Customer.objects.filter(pk=customer.pk).update(default_payment_method_id="")  # renewals stay unpaid
    wallet_adjust(customer=customer, amount=2500, currency="usd", reason="Credit")

    renew(basic)  # both renew in the same chunk, both stay unpaid

    orders = list(Order.objects.filter(customer=customer, status="pending"))
    assert len(orders) == 2
    assert sorted(o.applied_balance for o in orders) == [0, 2500]  # the first takes it all, once
    assert all(o.due == o.total - o.applied_balance for o in orders)
    assert (wallet_balance(customer, "usd"), wallet_available(customer, "usd")) == (2500, 0)
    assert api.get(wallet_url(customer)).json()["balances"] == [
        {"currency": "usd", "balance": 2500, "reserved": 2500, "available": 0}
    ]
    # A reserved balance cannot be spent again: a debit is refused ...
    before = ledger_state()
    refused = api.post(
        wallet_url(customer, "/adjustments"), {"amount": -1, "currency": "usd", "reason": "x"}, format="json"
    )
    assert (refused.status_code, refused.json()["errors"][0]["field"]) == (400, "amount")
    assert refused.json()["code"] == "insufficient_balance"
    assert ledger_state() == before
    # ... and an order voided (its subscription revoked) gives its reservation back; the money
    # then pays the next order that asks.
    holder = next(o for o in orders if o.applied_balance)
    services.subscription_revoke(subscription=holder.subscription)
    assert wallet_available(customer, "usd") == 2500


def test_the_remainder_left_to_charge_is_always_chargeable():
    assert applicable_amount(total=3000, available=2990, currency="usd") == 2950  # 50 is usd's minimum
    assert applicable_amount(total=3000, available=3000, currency="usd") == 3000  # nothing left: fine
    assert applicable_amount(total=60, available=30, currency="usd") == 10
    assert applicable_amount(total=40, available=30, currency="usd") == 0  # below the minimum anyway
    assert applicable_amount(total=1050, available=1000, currency="isk") == 950  # isk: whole units (100)
    assert applicable_amount(total=12345, available=1000, currency="isk") == 945  # 11400 left


# --- credits: downgrades and revocations --------------------------------------------------------


@pytest.mark.parametrize(
    ("behavior", "credit", "tax"),
    [
        ("exclusive", 4800, 800),  # 4000 of unused Pro beyond the Basic charge, plus its 20% VAT
        ("inclusive", 4000, 667),  # the VAT is inside: 4000 / 1.2 * 0.2 = 666.67, half-up
    ],
)
def test_an_invoiced_downgrade_credits_the_wallet_with_its_tax(manual_org, plans, behavior, credit, tax):
    Organization.objects.filter(pk=manual_org.pk).update(tax_behavior=behavior)
    pro = subscribe(manual_org, plans["pro"], **GB)
    merchant_before = merchant_balance(manual_org, "usd")

    with time_machine.travel(MIDDLE, tick=False):  # r = 2/3: -6000 unused Pro, +2000 Basic
        preview = services.subscription_change_preview(
            subscription=pro, price_id=price_of(plans["basic"]).pk, proration_behavior="invoice"
        )
        _, order = services.subscription_change(
            subscription=pro, price_id=price_of(plans["basic"]).pk, proration_behavior="invoice"
        )

    assert preview.invoice.wallet_credit == credit
    order.refresh_from_db()
    assert (order.status, order.subtotal, order.tax, order.total, order.due) == ("paid", 0, 0, 0, 0)
    assert sorted(order.items.values_list("amount", flat=True)) == [-6000, 2000, 4000]
    assert not BillingEntry.objects.filter(subscription=pro, order__isnull=True).exists()  # nothing carried
    credit_tx = LedgerTransaction.objects.get(idempotency_key=f"order:{order.pk}:credit")
    assert (credit_tx.type, credit_tx.order_id, credit_tx.customer_id) == (
        "wallet_credit",
        order.pk,
        pro.customer_id,
    )
    assert lines(credit_tx) == {
        "customer_wallet": -credit,
        "tax_payable": tax,
        "merchant_balance": credit - tax,
    }
    assert wallet_balance(pro.customer, "usd") == credit
    assert merchant_balance(manual_org, "usd") == merchant_before - (credit - tax)

    renew(pro)  # Basic renews at 3000 (+VAT) and the wallet pays what it can

    renewal = Order.objects.get(subscription=pro, billing_reason="subscription_cycle")
    assert renewal.applied_balance == min(credit, renewal.total)
    assert wallet_balance(pro.customer, "usd") == credit - renewal.applied_balance


def test_revoke_with_credit_gives_back_the_unused_time_to_the_second(api, manual_org, plans):
    basic = subscribe(manual_org, plans["basic"], **GB)  # paid 3600 (600 VAT) for April
    revoke_at = START + timedelta(days=7, hours=3)  # 22 d 21 h of 30 d left: r = 0.7625
    merchant_before = merchant_balance(manual_org, "usd")

    with time_machine.travel(revoke_at, tick=False):
        preview = api.get(f"/v1/subscriptions/{basic.pk}/revoke/preview").json()
        response = api.post(
            f"/v1/subscriptions/{basic.pk}/revoke", {"reason": "moving on", "credit": True}, format="json"
        )

    assert response.status_code == 200, response.json()
    assert preview == {
        "subscription_id": str(basic.pk),
        "currency": "usd",
        "credit_amount": 2745,
        "credit_tax": 458,
    }
    credit_tx = LedgerTransaction.objects.get(idempotency_key=f"subscription:{basic.pk}:revoke_credit")
    # 3600 x 0.7625 = 2745; 600 x 0.7625 = 457.5 -> 458 (half-up)
    assert lines(credit_tx) == {"customer_wallet": -2745, "tax_payable": 458, "merchant_balance": 2287}
    assert wallet_balance(basic.customer, "usd") == 2745
    assert merchant_balance(manual_org, "usd") == merchant_before - 2287
    entry = AuditEntry.objects.get(action="subscription.revoke")  # the API token's, on record
    assert (entry.actor_kind, entry.actor_id, entry.data["credit"]) == ("token", None, 2745)


def test_revoke_without_credit_or_without_payment_credits_nothing(manual_org, plans, operator):
    basic = subscribe(manual_org, plans["basic"], **GB)
    trialing = subscribe(manual_org, plans["pro"], trial_days=14)

    with time_machine.travel(MIDDLE, tick=False):
        assert services.subscription_revoke_preview(subscription=trialing) == (0, 0)
        services.subscription_revoke(subscription=basic, reason="fraud", actor=operator)
        services.subscription_revoke(subscription=trialing, credit=True, actor=operator)

    assert not LedgerTransaction.objects.filter(type="wallet_credit").exists()
    assert wallet_balance(basic.customer, "usd") == 0
    assert AuditEntry.objects.filter(action="subscription.revoke").count() == 2


# --- adjustments: refusals ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"amount": 500, "currency": "usd", "reason": ""}, ("reason", "required")),
        ({"amount": 500, "currency": "usd", "reason": "   "}, ("reason", "required")),
        ({"amount": 500, "currency": "usd"}, ("reason", "required")),
        ({"amount": -1, "currency": "usd", "reason": "fix"}, ("amount", "insufficient_balance")),
        ({"amount": 0, "currency": "usd", "reason": "fix"}, ("amount", "zero")),
        ({"amount": 500, "currency": "xyz", "reason": "fix"}, ("currency", "invalid_currency")),
        ({"amount": "lots", "currency": "usd", "reason": "fix"}, ("amount", "invalid")),
    ],
)
def test_bad_wallet_adjustments_answer_400_and_change_nothing(api, customer, body, error):
    before = ledger_state()

    response = api.post(wallet_url(customer, "/adjustments"), body, format="json")

    assert response.status_code == 400, response.json()
    assert error in [(e["field"], e["code"]) for e in response.json()["errors"]]
    assert ledger_state() == before
    assert wallet_balance(customer, "usd") == 0


def test_wallet_adjustments_need_the_customers_write_scope_and_stay_in_the_tenant(
    make_api, org, customer, make_org
):
    reader = make_api(org, scopes=["customers:read"])
    intruder = make_api(make_org("Intruder"))
    body = {"amount": 500, "currency": "usd", "reason": "goodwill"}
    before = ledger_state()

    denied = reader.post(wallet_url(customer, "/adjustments"), body, format="json")
    hidden = intruder.post(wallet_url(customer, "/adjustments"), body, format="json")

    assert (denied.status_code, denied.json()["code"]) == (403, "insufficient_scope")
    assert reader.get(wallet_url(customer)).status_code == 200
    assert hidden.status_code == 404
    assert intruder.get(wallet_url(customer, "/transactions")).status_code == 404
    assert ledger_state() == before


def test_operators_without_the_permission_cannot_adjust(make_staff, customer, org):
    support = make_staff("support")
    before = ledger_state()

    with pytest.raises(Forbidden):
        wallet_adjust(customer=customer, amount=500, currency="usd", reason="goodwill", actor=support)
    with pytest.raises(Forbidden):
        balance_adjust(organization=org, amount=500, currency="usd", reason="correction", actor=support)
    with pytest.raises(Forbidden):
        balance_adjust(organization=org, amount=500, currency="usd", reason="correction", actor=None)

    assert ledger_state() == before


def test_balance_adjustment_by_finance_is_posted_and_audited(make_staff, org):
    finance = make_staff("finance")
    before = ledger_state()
    with pytest.raises(InvalidInput) as refused:
        balance_adjust(organization=org, amount=500, currency="usd", reason=" ", actor=finance)
    assert (refused.value.field, refused.value.code) == ("reason", "required")
    assert ledger_state() == before

    posted = balance_adjust(
        organization=org, amount=-1250, currency="usd", reason="Duplicate payout", actor=finance
    )

    assert posted.type == "balance_adjustment" and posted.idempotency_key.startswith("adjustment:")
    assert lines(posted) == {"merchant_balance": 1250, "adjustments": -1250}
    assert merchant_balance(org, "usd") == -1250
    audit = AuditEntry.objects.get(action="balance.adjust")
    assert (audit.actor, audit.reason, audit.data["amount"], audit.object_id) == (
        finance, "Duplicate payout", -1250, str(org.pk),
    )  # fmt: skip
