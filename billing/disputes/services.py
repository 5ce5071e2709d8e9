"""Disputes: mirrored from ``charge.dispute.*`` snapshots, whatever order they arrive in.

``dispute_apply_snapshot`` is the only writer. It upserts the dispute by its processor id
under a row lock and applies, exactly once each, whatever the snapshot proves happened:

- the status, reason, amount and evidence due date follow the newest snapshot
  (``processor_state_at``); a closed dispute stays closed;
- funds withdrawn (the ``funds_withdrawn`` event, or a chargeback snapshot whose balance
  transactions hold a withdrawal): the disputed amount leaves the merchant's balance and
  tax payable in proportion (``postings.ledger_post_dispute``), and the dispute fee is
  charged once known: Stripe's, from the withdrawal's balance transactions, or the
  organization's ``dispute_fee`` for a manual payment;
- funds reinstated (the ``funds_reinstated`` event, or a dispute won after a withdrawal):
  the amount comes back (``postings.ledger_post_dispute_reversal``), and the fee as far as
  Stripe gave it back on the reversal's balance transaction (all of it for the fallback);
- a won dispute with ``organization.dispute_won_restores_access``: the subscription its
  chargeback ended is restored while its paid period runs;
- a new chargeback (not an inquiry) with ``organization.dispute_revokes_access``: the
  order's subscription ends now and ``dispute.created`` (or ``dispute.updated``) is recorded
  with ``access_revoked_at`` set, on which benefits revoke.

Each step is guarded by a timestamp on the dispute row (``funds_withdrawn_at``,
``funds_reinstated_at``, ``access_revoked_at``) and each posting by its idempotency key,
so duplicates, replays, concurrent deliveries and out-of-order events converge.
Inquiries (``warning_*``) never move money.
"""

import contextlib
import logging
from datetime import UTC, datetime
from typing import Any

from django.db import IntegrityError, transaction

from billing.disputes.models import Dispute
from billing.ledger import postings
from billing.orders.locks import order_lock, order_lock_with_subscription
from billing.orders.selectors import payment_order
from billing.payments.models import Payment
from billing.payments.services import payment_find
from core import clock
from core.audit import system_actor
from core.errors import Conflict, InvalidInput
from core.events.services import event_record, event_record_if_changed, event_snapshot
from core.locks import lock_first
from core.retry import retry_on_conflict

logger = logging.getLogger("recur.disputes")

S = Dispute.Status
WARNING = frozenset({S.WARNING_NEEDS_RESPONSE, S.WARNING_UNDER_REVIEW, S.WARNING_CLOSED})
CLOSED = frozenset(Dispute.CLOSED)
DISPUTES = system_actor("disputes")  # who ends or restores a subscription over a chargeback
# Ties within one second of processor time go to the status further along.
RANK = {
    S.WARNING_NEEDS_RESPONSE: 0,
    S.NEEDS_RESPONSE: 0,
    S.WARNING_UNDER_REVIEW: 1,
    S.UNDER_REVIEW: 1,
    S.WARNING_CLOSED: 2,
    S.WON: 2,
    S.LOST: 2,
    S.PREVENTED: 2,
}
FUNDS_WITHDRAWN_EVENT = "charge.dispute.funds_withdrawn"
FUNDS_REINSTATED_EVENT = "charge.dispute.funds_reinstated"


def _id(value) -> str:
    """Stripe sends a related object as an id or, expanded, as an object."""
    if isinstance(value, dict):
        return str(value.get("id") or "")
    return str(value or "")


def _timestamp(value) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        return datetime.fromtimestamp(int(value), tz=UTC)
    except (TypeError, ValueError, OverflowError):
        return None


def _int(value, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"The dispute's {field} must be an integer, got {value!r}.", field=field)
    return value


def _int_or_zero(value) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _balance_transactions(payload: dict) -> tuple[list[dict], list[dict]]:
    """The dispute's balance transactions, split into withdrawals (``reporting_category``
    ``dispute``, or a negative amount) and reinstatements (``dispute_reversal``, or positive)."""
    withdrawals, reinstatements = [], []
    entries = payload.get("balance_transactions")
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or isinstance(entry.get("amount"), bool):
            continue
        amount = entry.get("amount")
        if not isinstance(amount, int) or amount == 0:
            continue
        category = str(entry.get("reporting_category") or "")
        reversal = category == "dispute_reversal" or (category != "dispute" and amount > 0)
        (reinstatements if reversal else withdrawals).append(entry)
    return withdrawals, reinstatements


def _fee_of(entries: list[dict]) -> tuple[int, str]:
    """The fee of balance transactions (``fee``; else the sum of ``fee_details``; else
    ``amount - net``) and its currency."""
    total, currency = 0, ""
    for entry in entries:
        fee = entry.get("fee")
        details = entry.get("fee_details")
        net = entry.get("net")
        if isinstance(fee, int) and not isinstance(fee, bool):
            pass
        elif isinstance(details, list):
            fee = sum(_int_or_zero(d.get("amount")) for d in details if isinstance(d, dict))
        elif isinstance(net, int) and not isinstance(net, bool):
            fee = entry["amount"] - net
        else:
            fee = 0
        total += fee
        currency = currency or str(entry.get("currency") or "").lower()
    return total, currency


def _lock_or_create(
    processor_dispute_id: str, payment: Payment, facts: dict[str, Any]
) -> tuple[Dispute, bool]:
    dispute = lock_first(Dispute.objects.filter(processor_dispute_id=processor_dispute_id))
    if dispute is not None:
        return dispute, False
    order = payment_order(payment)
    try:
        with transaction.atomic():
            dispute = Dispute.objects.create(
                processor_dispute_id=processor_dispute_id,
                organization_id=payment.organization_id,
                payment=payment,
                order=order,
                customer_id=order.customer_id if order is not None else payment.customer_id,
                **facts,
            )
        return dispute, True
    except IntegrityError:
        # A concurrent delivery about the same dispute inserted it first: work on theirs.
        return lock_first(Dispute.objects.filter(processor_dispute_id=processor_dispute_id)), False


def _parse(payload: dict) -> dict[str, Any]:
    status = str(payload.get("status") or "")
    if status not in S.values:
        raise InvalidInput(f"Unknown dispute status {status!r}.", field="status", code="invalid_status")
    amount = _int(payload.get("amount"), "amount")
    if amount <= 0:
        raise InvalidInput("A dispute's amount must be positive.", field="amount")
    currency = str(payload.get("currency") or "").lower()
    if len(currency) != 3:
        raise InvalidInput(f"Invalid dispute currency {currency!r}.", field="currency")
    evidence = payload.get("evidence_details") or {}
    return {
        "status": status,
        "reason": str(payload.get("reason") or "")[:50],
        "amount": amount,
        "currency": currency,
        "processor_charge_id": _id(payload.get("charge"))[:255],
        "evidence_due_by": _timestamp(evidence.get("due_by")) if isinstance(evidence, dict) else None,
    }


def _apply_state(dispute: Dispute, facts: dict[str, Any], payload: dict, observed_at: datetime) -> set[str]:
    """Follow the snapshot if it is newer than the last one applied; closed stays closed."""
    seen = dispute.processor_state_at
    status = facts["status"]
    newer = (
        seen is None or observed_at > seen or (observed_at == seen and RANK[status] > RANK[dispute.status])
    )
    if not newer or (dispute.status in CLOSED and status not in CLOSED and seen is not None):
        return set()
    changed = {"processor_state_at", "snapshot"}
    dispute.processor_state_at = observed_at
    dispute.snapshot = payload
    updates = {
        "status": status,
        "reason": facts["reason"] or dispute.reason,
        "evidence_due_by": facts["evidence_due_by"] or dispute.evidence_due_by,
        "processor_charge_id": facts["processor_charge_id"] or dispute.processor_charge_id,
    }
    if dispute.funds_withdrawn_at is None:  # the posted amount is what was withdrawn
        updates["amount"], updates["currency"] = facts["amount"], facts["currency"]
    for name, value in updates.items():
        if getattr(dispute, name) != value:
            setattr(dispute, name, value)
            changed.add(name)
    return changed


def _withdraw(dispute: Dispute) -> None:
    order = order_lock(dispute.order_id) if dispute.order_id else None  # held since the start
    if order is not None and order.currency == dispute.currency:
        dispute.tax_amount = postings.tax_share(
            order, before=order.refunded_amount, after=order.refunded_amount + dispute.amount
        )
    else:
        dispute.tax_amount = 0
    dispute.funds_withdrawn_at = clock.now()
    dispute.save(update_fields=["tax_amount", "funds_withdrawn_at", "updated_at"])
    postings.ledger_post_dispute(dispute=dispute)
    logger.info(
        "dispute %s: %s %s withdrawn (tax %s, fee %s)",
        dispute.processor_dispute_id,
        dispute.amount,
        dispute.currency,
        dispute.tax_amount,
        dispute.fee,
    )


def _from_processor(dispute: Dispute) -> bool:
    """Stripe's balance transactions say what the dispute cost; a manual payment has none,
    so the organization's ``dispute_fee`` stands in for them."""
    return dispute.payment is not None and dispute.payment.processor == Payment.Processor.STRIPE


def _charge_fee(dispute: Dispute, withdrawals: list[dict]) -> None:
    """Record the dispute fee once it is known: Stripe's (the withdrawal's ``fee``, in its
    settlement currency, even 0) or, for a manual payment, the organization's setting."""
    if _from_processor(dispute):
        if not withdrawals:
            return  # not known yet: a later snapshot with the balance transaction records it
        fee, currency = _fee_of(withdrawals)
        source = "processor"
    else:
        fee, currency, source = dispute.organization.dispute_fee, dispute.currency, "organization"
    dispute.fee, dispute.fee_currency, dispute.fee_source = max(fee, 0), currency or dispute.currency, source
    dispute.save(update_fields=["fee", "fee_currency", "fee_source", "updated_at"])
    postings.ledger_post_dispute_fee(dispute=dispute)


def _refund_fee(dispute: Dispute, reinstatements: list[dict]) -> None:
    """A won dispute gives the fee back as far as Stripe did (a negative fee on the reversal's
    balance transaction); with the organization's setting, the whole fee comes back."""
    if _from_processor(dispute):
        if not reinstatements:
            return
        refunded, _currency = _fee_of(reinstatements)
        refunded = -refunded
    else:
        refunded = dispute.fee
    dispute.fee_refunded = max(0, min(refunded, dispute.fee))
    dispute.fee_refunded_at = clock.now()
    dispute.save(update_fields=["fee_refunded", "fee_refunded_at", "updated_at"])
    postings.ledger_post_dispute_fee_reversal(dispute=dispute)


def _reinstate(dispute: Dispute) -> None:
    dispute.funds_reinstated_at = clock.now()
    dispute.save(update_fields=["funds_reinstated_at", "updated_at"])
    postings.ledger_post_dispute_reversal(dispute=dispute)


def _revoke_access(dispute: Dispute) -> None:
    dispute.access_revoked_at = clock.now()
    dispute.save(update_fields=["access_revoked_at", "updated_at"])
    logger.info("dispute %s: revoking the access the order gave", dispute.processor_dispute_id)
    order = dispute.order
    if order is None:
        return
    if order.subscription_id is not None:
        from billing.subscriptions.models import Subscription
        from billing.subscriptions.services import subscription_revoke

        subscription = Subscription.objects.get(pk=order.subscription_id)
        if subscription.status != Subscription.Status.CANCELED:
            reason = f"Disputed payment ({dispute.reason or 'dispute'} {dispute.processor_dispute_id})"
            with contextlib.suppress(Conflict):  # ended meanwhile: nothing left to revoke
                status = subscription.status
                subscription_revoke(subscription=subscription, reason=reason, actor=DISPUTES)
                dispute.revoked_subscription, dispute.revoked_subscription_status = subscription, status
                dispute.save(
                    update_fields=["revoked_subscription", "revoked_subscription_status", "updated_at"]
                )
    # Benefits revoke on the event ``_record_events`` records next (``access_revoked_at`` set).


def _restore_access(dispute: Dispute) -> None:
    """A won dispute gives back what its chargeback took away, when the organization says so:
    the subscription it ended continues (while its paid period runs; a past-due one stays
    ended: its dunning was stopped) and ``dispute.closed`` is recorded with
    ``access_restored_at`` set, on which benefits are given back."""
    from billing.subscriptions.services import RESTORABLE_STATUSES, subscription_restore

    dispute.access_restored_at = clock.now()
    note = "access restored"
    subscription = dispute.revoked_subscription
    if subscription is not None:
        if dispute.revoked_subscription_status not in RESTORABLE_STATUSES:
            note = f"subscription not restored: it was {dispute.revoked_subscription_status} when it ended"
        else:
            try:
                subscription_restore(
                    subscription=subscription,
                    status=dispute.revoked_subscription_status,
                    reason=f"Dispute {dispute.processor_dispute_id} won",
                    actor=DISPUTES,
                )
            except Conflict as exc:
                note = f"subscription not restored: {exc.detail}"
    dispute.access_note = note[:255]
    dispute.save(update_fields=["access_restored_at", "access_note", "updated_at"])
    logger.info("dispute %s won: %s", dispute.processor_dispute_id, note)
    # Benefits are given back on the event ``_record_events`` records next (dispute.closed, or
    # dispute.updated for a dispute closed before), with ``access_restored_at`` set.


def _record_events(dispute: Dispute, *, created: bool, was_closed: bool, shown: dict | None) -> None:
    """dispute.created the first time; dispute.closed when it closes; dispute.updated when
    anything an integrator sees changed otherwise."""
    if created:
        event_record(type="dispute.created", obj=dispute)
    if not was_closed and dispute.closed_at is not None:
        event_record(type="dispute.closed", obj=dispute)
    elif not created:
        event_record_if_changed(type="dispute.updated", obj=dispute, before=shown)


@retry_on_conflict
@transaction.atomic
def dispute_apply_snapshot(*, payload: dict, observed_at: datetime, event_type: str = "") -> Dispute | None:
    """Apply one processor snapshot of a dispute (``payload`` is the dispute object, ``event_type``
    the event that carried it). Returns None, writing nothing, when the disputed charge is not
    one of Recur's payments. Safe to call any number of times, concurrently, in any order."""
    processor_dispute_id = _id(payload.get("id"))
    if not processor_dispute_id:
        raise InvalidInput("The dispute has no id.", field="id")
    facts = _parse(payload)
    payment = payment_find(
        payment_intent_id=_id(payload.get("payment_intent")), charge_id=facts["processor_charge_id"]
    )
    if payment is None:
        return None
    if (order := payment_order(payment)) is not None:
        # core.locks: the subscription (a chargeback may revoke it) and the order before the dispute.
        order_lock_with_subscription(order.pk)
    dispute, created = _lock_or_create(processor_dispute_id, payment, {**facts, "snapshot": {}})
    shown = None if created else event_snapshot(obj=dispute)
    was_closed = not created and dispute.closed_at is not None
    # A chargeback seen for the first time: a new dispute, or an inquiry that escalated.
    was_chargeback = not created and (dispute.status not in WARNING or dispute.funds_withdrawn_at is not None)
    changed = _apply_state(dispute, facts, payload, observed_at)
    # Closed at the earliest snapshot that says so, whichever arrived first.
    if facts["status"] in CLOSED and (dispute.closed_at is None or observed_at < dispute.closed_at):
        dispute.closed_at = observed_at
        changed.add("closed_at")
    if changed:
        dispute.save(update_fields=[*changed, "updated_at"])
    organization = dispute.organization
    is_chargeback = facts["status"] not in WARNING

    withdrawals, reinstatements = _balance_transactions(payload)
    # A reinstatement proves the withdrawal before it, even when that event has not come yet.
    withdrawn = is_chargeback and (
        event_type in (FUNDS_WITHDRAWN_EVENT, FUNDS_REINSTATED_EVENT) or bool(withdrawals)
    )
    reinstated = is_chargeback and (
        event_type == FUNDS_REINSTATED_EVENT
        or (facts["status"] == S.WON and (bool(withdrawals) or dispute.funds_withdrawn_at is not None))
        or bool(withdrawals and reinstatements)
    )
    if withdrawn and dispute.funds_withdrawn_at is None:
        _withdraw(dispute)
    if dispute.funds_withdrawn_at is not None and not dispute.fee_source:
        _charge_fee(dispute, withdrawals)
    if reinstated and dispute.funds_withdrawn_at is not None and dispute.funds_reinstated_at is None:
        _reinstate(dispute)
    if dispute.funds_reinstated_at is not None and dispute.fee_source and dispute.fee_refunded_at is None:
        _refund_fee(dispute, reinstatements)
    if (
        is_chargeback
        and not was_chargeback
        and dispute.access_revoked_at is None
        and organization.dispute_revokes_access
    ):
        _revoke_access(dispute)
    if (
        dispute.status == S.WON
        and dispute.access_revoked_at is not None
        and dispute.access_restored_at is None
        and organization.dispute_won_restores_access
    ):
        _restore_access(dispute)
    _record_events(dispute, created=created, was_closed=was_closed, shown=shown)
    return dispute
