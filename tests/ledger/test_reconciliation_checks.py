"""Reconciliation of refunds, disputes, processor fees and refunded amounts, and the
backfill that posts what is missing (once)."""

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from billing.disputes.models import Dispute
from billing.ledger import postings
from billing.ledger.backfill import ledger_backfill
from billing.ledger.models import LedgerTransaction, ReconciliationRun
from billing.ledger.reconciliation import reconcile
from billing.orders.models import Order
from billing.orders.services import Line, order_create
from billing.payments.models import Payment
from billing.refunds.models import Refund

pytestmark = pytest.mark.django_db


def paid(org, customer, amount=10_000, tax=0):
    return order_create(
        organization=org, customer=customer, billing_reason="purchase", currency="usd",
        lines=[Line(label="Thing", amount=amount)], tax=tax, paid=True,
    )  # fmt: skip


def refund_row(order, amount, status="pending", tax_amount=0):
    """A refund inserted as a broken import or a bug would leave it: no posting."""
    return Refund.objects.create(
        organization=order.organization, order=order, customer=order.customer, status=status,
        currency=order.currency, amount=amount, card_amount=amount, tax_amount=tax_amount,
    )  # fmt: skip


def dispute_row(order, *, withdrawn=True, reinstated=False, fee=1500):
    now = timezone.now()
    return Dispute.objects.create(
        organization=order.organization, order=order, customer=order.customer,
        processor_dispute_id=f"dp_{Dispute.objects.count() + 1}", status="needs_response",
        amount=order.total, currency=order.currency, fee=fee, tax_amount=order.tax,
        funds_withdrawn_at=now if withdrawn else None, funds_reinstated_at=now if reinstated else None,
    )  # fmt: skip


def found(check: str) -> list[dict]:
    return [d for d in reconcile() if d["check"] == check]


def test_refund_without_posting_and_failed_refund_without_reversal(org, customer):
    order = paid(org, customer, tax=2_000)
    assert reconcile() == []

    lost = refund_row(order, 3_000, tax_amount=500)
    Order.objects.filter(pk=order.pk).update(refunded_amount=3_000, status="partially_refunded")
    assert found("refund_without_posting") == [
        {"check": "refund_without_posting", "refund": str(lost.pk), "organization": str(org.pk),
         "order": str(order.pk), "status": "pending", "amount": 3_000, "currency": "usd", "missing": "refund"}
    ]  # fmt: skip
    postings.ledger_post_refund(refund=lost)
    assert reconcile() == []

    Refund.objects.filter(pk=lost.pk).update(status="failed")  # the processor said no; not reversed
    Order.objects.filter(pk=order.pk).update(refunded_amount=0, status="paid")
    (item,) = found("refund_without_posting")
    assert (item["refund"], item["status"], item["missing"]) == (str(lost.pk), "failed", "refund_reversal")
    postings.ledger_post_refund_reversal(refund=Refund.objects.get(pk=lost.pk))
    assert reconcile() == []


def test_order_refunded_amount_must_match_its_live_refunds(org, customer):
    order = paid(org, customer)
    refund = refund_row(order, 2_500)
    postings.ledger_post_refund(refund=refund)
    failed = refund_row(order, 1_000, status="failed")  # not live: does not count
    postings.ledger_post_refund(refund=failed)
    postings.ledger_post_refund_reversal(refund=failed)
    assert found("order_refunded_mismatch") == [
        {"check": "order_refunded_mismatch", "order": str(order.pk), "organization": str(org.pk),
         "refunded_amount": 0, "refunds_sum": 2_500, "currency": "usd"}
    ]  # fmt: skip
    Order.objects.filter(pk=order.pk).update(refunded_amount=2_500)
    assert reconcile() == []
    Order.objects.filter(pk=order.pk).update(refunded_amount=3_500)  # counted the failed one
    assert found("order_refunded_mismatch")[0]["refunds_sum"] == 2_500


def test_disputes_without_postings(org, customer):
    order = paid(org, customer, tax=1_000)
    open_only = dispute_row(order, withdrawn=False)  # nothing moved yet: nothing to post
    withdrawn = dispute_row(order)
    assert [(d["dispute"], d["missing"]) for d in found("dispute_without_posting")] == [
        (str(withdrawn.pk), ["dispute", "dispute_fee"])
    ]
    postings.ledger_post_dispute(dispute=withdrawn)
    assert reconcile() == []

    Dispute.objects.filter(pk=withdrawn.pk).update(status="won", funds_reinstated_at=timezone.now())
    assert [(d["dispute"], d["missing"]) for d in found("dispute_without_posting")] == [
        (str(withdrawn.pk), ["dispute_reversal"])
    ]
    postings.ledger_post_dispute_reversal(dispute=Dispute.objects.get(pk=withdrawn.pk))
    assert reconcile() == []
    assert open_only.ledger_transactions.count() == 0


def test_stored_fee_without_posting(org, customer, make_payment):
    payment = make_payment()
    Payment.objects.filter(pk=payment.pk).update(status="succeeded", fee=88, net=1912)
    assert [d["payment"] for d in found("processor_fee_without_posting")] == [str(payment.pk)]


def test_backfill_posts_refunds_disputes_and_fees_once(org, customer, make_payment, capsys):
    order = paid(org, customer, tax=2_000)
    Order.objects.filter(pk=order.pk).update(refunded_amount=1_000, status="partially_refunded")
    refund = refund_row(order, 1_000, tax_amount=167)
    failed = refund_row(order, 500, status="canceled")
    posted_failed = refund_row(order, 400, status="failed")
    postings.ledger_post_refund(refund=posted_failed)  # posted, never reversed
    dispute = dispute_row(order, reinstated=True)
    payment = make_payment()
    Payment.objects.filter(pk=payment.pk).update(status="succeeded", fee=88, net=1912)
    unposted_order = Order.objects.create(
        organization=org, customer=customer, status="paid", billing_reason="purchase", currency="usd",
        subtotal=700, net=700, total=700, due=700, platform_fee=50,
    )  # fmt: skip
    checks = {d["check"] for d in reconcile()}
    assert checks == {
        "refund_without_posting", "dispute_without_posting", "processor_fee_without_posting",
        "paid_order_without_posting",
    }  # fmt: skip
    with pytest.raises(CommandError):
        call_command("ledger_reconcile")

    before = LedgerTransaction.objects.count()
    call_command("ledger_backfill")
    out = capsys.readouterr().out
    assert "posted 1 paid order(s)" in out
    assert "1 processor fee(s), 2 refund(s), 2 refund reversal(s), 1 dispute withdrawal(s)" in out
    assert "1 dispute reinstatement(s)" in out
    # order, fee, 2 refunds, 2 reversals, dispute + its fee, reinstatement
    assert LedgerTransaction.objects.count() == before + 9
    assert refund.ledger_transactions.get().type == "refund"
    assert sorted(failed.ledger_transactions.values_list("type", flat=True)) == ["refund", "refund_reversal"]
    assert sorted(dispute.ledger_transactions.values_list("type", flat=True)) == [
        "dispute",
        "dispute_fee",
        "dispute_reversal",
    ]
    assert unposted_order.ledger_transactions.get().type == "payment"
    assert reconcile() == []
    call_command("ledger_reconcile")
    assert ReconciliationRun.objects.order_by("-id").first().ok

    again = ledger_backfill()
    assert again.total == 0
    assert LedgerTransaction.objects.count() == before + 9
