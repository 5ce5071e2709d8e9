"""Refunds: money given back for a paid order, full or partial, posted to the ledger at once
and sent to the processor after commit.

Flow: ``refund_create`` (one transaction under the order's row lock: checks, the Refund row,
its ledger posting, the order's refunded amount and status, benefit revocation, audit), then
``refund_submit`` outside any transaction (the processor call, idempotency key
``refund:<id>``), whose outcome goes through ``refund_apply_outcome`` like every later
report (``refund.*`` webhooks). A refund the processor fails or cancels has its posting
reversed and gives the order its refundable amount back, exactly once.

``refund_preview`` is the computation ``refund_create`` posts, so a preview shows exactly
what a refund would move.
"""

import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import Q, Sum

from billing.disputes.models import Dispute
from billing.ledger.postings import ledger_post_refund, ledger_post_refund_reversal, tax_share
from billing.ledger.services import order_settled_payment
from billing.money import format_amount
from billing.orders.locks import order_lock_with_subscription
from billing.orders.models import Order
from billing.orders.services import order_refunded_set
from billing.payments.models import Payment
from billing.payments.processor import ProcessorError
from billing.payments.services import processor_for
from billing.refunds.models import Refund
from core import clock
from core.audit import audit_record, is_operator, json_safe
from core.errors import Conflict, InvalidInput
from core.events.services import event_record, event_record_if_changed, event_snapshot
from core.faults import crash_point
from core.locks import lock_one
from core.retry import retry_on_conflict

logger = logging.getLogger("recur.refunds")

S = Refund.Status
ACTIVE = (S.PENDING, S.SUCCEEDED)  # refunds that count against the order (like Stripe's amount_refunded)
REFUNDABLE_STATUSES = (Order.Status.PAID, Order.Status.PARTIALLY_REFUNDED)


@dataclass(frozen=True)
class RefundPreview:
    """What a refund of ``amount`` on ``order`` moves. ``merchant_balance_change`` is negative:
    what the merchant's balance loses (the amount without its tax; the platform fee is kept)."""

    order: Order
    currency: str
    amount: int
    card_amount: int
    wallet_amount: int
    tax_amount: int
    merchant_balance_change: int
    refundable_before: int
    refundable_after: int
    refunded_before: int
    refunded_after: int
    order_status_after: str
    payment: Payment | None


def _active(order: Order):
    return Refund.objects.filter(order=order, status__in=ACTIVE)


def _sums(order: Order, payment: Payment | None) -> dict[str, int]:
    totals = _active(order).aggregate(
        amount=Sum("amount", default=0),
        wallet=Sum("wallet_amount", default=0),
        tax=Sum("tax_amount", default=0),
        card=Sum("card_amount", filter=Q(payment=payment) if payment else Q(pk__isnull=True), default=0),
    )
    return {name: int(value) for name, value in totals.items()}


def _capacity(
    order: Order, payment: Payment | None, sums: dict[str, int], *, reported: bool = False
) -> tuple[int, int]:
    """What can still go back to the card and to the wallet. A refund Recur makes is also
    capped by what the processor says it already refunded (``processor_amount_refunded``);
    a refund the processor reports is what makes up that figure, so it is not."""
    card = 0
    if payment is not None:
        card_refunded = sums["card"]
        if not reported and payment.processor_amount_refunded is not None:
            card_refunded = max(card_refunded, payment.processor_amount_refunded)
        card = max(payment.amount - card_refunded, 0)
    wallet = max(min(max(order.applied_balance, 0), order.total) - sums["wallet"], 0)
    return card, wallet


def _status_for(order: Order, refunded: int) -> str:
    if refunded <= 0:
        return Order.Status.PAID
    return Order.Status.REFUNDED if refunded >= order.total else Order.Status.PARTIALLY_REFUNDED


def order_refundable(order: Order) -> int:
    """What can still be refunded: the order's total less what pending and succeeded refunds
    took, and no more than the card and the wallet can take back."""
    if order.status not in REFUNDABLE_STATUSES or _disputed(order):
        return 0
    payment = order_settled_payment(order)
    sums = _sums(order, payment)
    card, wallet = _capacity(order, payment, sums)
    return max(min(order.total - order.refunded_amount, card + wallet), 0)


def _plan(order: Order, amount: int | None, *, reported: bool = False) -> RefundPreview:
    """The split and tax of a refund; raises the same errors ``refund_create`` does.
    ``reported``: a refund the processor already made (recorded, not requested), which a
    dispute does not block (the money has left) and only the card can have taken."""
    if order.status not in REFUNDABLE_STATUSES:
        raise Conflict(
            f"Only paid orders can be refunded; this order is {order.get_status_display().lower()}.",
            code="order_not_refundable",
        )
    if not reported:
        _check_not_disputed(order)
    payment = order_settled_payment(order)
    sums = _sums(order, payment)
    card_cap, wallet_cap = _capacity(order, payment, sums, reported=reported)
    if reported:
        wallet_cap = 0
    refunded_before = order.refunded_amount
    refundable = max(min(order.total - refunded_before, card_cap + wallet_cap), 0)
    if amount is None:
        amount = refundable
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise InvalidInput("The amount must be an integer in minor units.", field="amount", code="invalid")
    if refundable <= 0:
        raise Conflict("Nothing is left to refund on this order.", code="order_not_refundable")
    if amount <= 0:
        raise InvalidInput("The amount must be greater than zero.", field="amount", code="invalid_amount")
    if amount > refundable:
        raise InvalidInput(
            f"At most {format_amount(refundable, order.currency)} ({refundable} in minor units) "
            f"can still be refunded on this order.",
            field="amount",
            code="amount_exceeds_refundable",
        )
    card_amount = min(amount, card_cap)
    wallet_amount = amount - card_amount
    refunded_after = refunded_before + amount
    # The cumulative share less what earlier refunds took: refunds always add up to the tax.
    tax_amount = tax_share(order, before=0, after=refunded_after) - sums["tax"]
    tax_amount = max(0, min(tax_amount, amount))
    return RefundPreview(
        order=order,
        currency=order.currency,
        amount=amount,
        card_amount=card_amount,
        wallet_amount=wallet_amount,
        tax_amount=tax_amount,
        merchant_balance_change=-(amount - tax_amount),
        refundable_before=refundable,
        refundable_after=refundable - amount,
        refunded_before=refunded_before,
        refunded_after=refunded_after,
        order_status_after=_status_for(order, refunded_after),
        payment=payment,
    )


def _disputed(order: Order) -> bool:
    """A disputed charge is settled by the dispute (Stripe refuses to refund it): refunding
    too would give the money back twice. A won dispute or a closed inquiry frees it again."""
    return order.disputes.exclude(status__in=(Dispute.Status.WON, Dispute.Status.WARNING_CLOSED)).exists()


def _check_not_disputed(order: Order) -> None:
    if _disputed(order):
        raise Conflict(
            "This order's payment is disputed; the dispute decides where the money goes.",
            code="order_disputed",
        )


def _check_reason(reason: str) -> None:
    if reason not in Refund.Reason.values:
        raise InvalidInput(
            f"Use one of {', '.join(Refund.Reason.values)}.", field="reason", code="invalid_choice"
        )


def _check_currency(order: Order, currency: str | None) -> None:
    if currency is not None and str(currency).lower() != order.currency:
        raise InvalidInput(
            f"The order is in {order.currency.upper()}; a refund must be in the same currency.",
            field="currency",
            code="currency_mismatch",
        )


def refund_preview(*, order: Order, amount: int | None = None, currency: str | None = None) -> RefundPreview:
    """What ``refund_create`` with this amount would post now (default: all that is left).
    Writes nothing."""
    order = Order.objects.select_related("organization", "customer").get(pk=order.pk)
    _check_currency(order, currency)
    return _plan(order, amount)


def _lock_order(order: Order) -> Order:
    # After its subscription, which a refund that revokes benefits changes too (core.locks).
    return order_lock_with_subscription(order.pk, related=("organization", "customer"))


def _recount(order: Order, payment: Payment | None) -> None:
    """The order's refunded amount and status, and the payment's refunded amount, from the
    refunds that count (pending and succeeded): idempotent, so a retried step changes nothing."""
    refunded = int(_active(order).aggregate(total=Sum("amount", default=0))["total"])
    status = _status_for(order, refunded)
    order_refunded_set(order=order, refunded_amount=refunded, status=status)
    if payment is not None:
        card = int(
            Refund.objects.filter(payment=payment, status__in=ACTIVE).aggregate(
                total=Sum("card_amount", default=0)
            )["total"]
        )
        card = min(card, payment.amount)
        Payment.objects.filter(pk=payment.pk).exclude(amount_refunded=card).update(
            amount_refunded=card, updated_at=clock.now()
        )


def _revoke_benefits(order: Order, actor, reason: str) -> None:
    if order.subscription_id is not None:
        from billing.subscriptions.models import Subscription
        from billing.subscriptions.services import subscription_revoke

        subscription = Subscription.objects.get(pk=order.subscription_id)
        if subscription.status != Subscription.Status.CANCELED:
            with contextlib.suppress(Conflict):  # ended meanwhile: nothing left to revoke
                subscription_revoke(subscription=subscription, reason=reason, actor=actor)


@retry_on_conflict
def refund_create(
    *,
    order: Order,
    amount: int | None,
    reason: str,
    comment: str = "",
    revoke_benefits: bool = False,
    currency: str | None = None,
    actor=None,
) -> Refund:
    """Refund ``amount`` (None: all that is left) of a paid order. Posts the refund and
    updates the order in one transaction; the card part is sent to the processor afterwards
    by ``refund_submit`` (the caller runs it after commit). A refund that goes entirely
    back to the customer's wallet succeeds at once."""
    _check_reason(reason)
    with transaction.atomic():
        order = _lock_order(order)
        _check_currency(order, currency)
        plan = _plan(order, amount)
        now = clock.now()
        wallet_only = plan.card_amount == 0
        refund = Refund.objects.create(
            organization=order.organization,
            order=order,
            customer=order.customer,
            payment=plan.payment,
            status=S.SUCCEEDED if wallet_only else S.PENDING,
            reason=reason,
            comment=comment,
            revoke_benefits=revoke_benefits,
            currency=order.currency,
            amount=plan.amount,
            card_amount=plan.card_amount,
            wallet_amount=plan.wallet_amount,
            tax_amount=plan.tax_amount,
            created_by=actor if is_operator(actor) else None,
            succeeded_at=now if wallet_only else None,
        )
        ledger_post_refund(refund=refund)
        _recount(order, plan.payment)
        # Benefits revoke on this event when its ``revoke_benefits`` is set (and on the
        # subscription's own events when it is revoked).
        event_record(type="refund.created", obj=refund)
        if revoke_benefits:
            _revoke_benefits(order, actor, reason=comment or f"refund ({reason})")
        if actor is not None:  # an operator's or an API token's refund (processor reports have none)
            audit_record(
                actor=actor,
                action="refund.create",
                target=refund,
                organization=order.organization,
                reason=comment,
                data=json_safe(
                    {
                        "order_id": order.pk,
                        "amount": plan.amount,
                        "currency": order.currency,
                        "card_amount": plan.card_amount,
                        "wallet_amount": plan.wallet_amount,
                        "tax_amount": plan.tax_amount,
                        "reason": reason,
                        "revoke_benefits": revoke_benefits,
                    }
                ),
            )
    return refund


OUTCOME_STATUS = {
    "pending": S.PENDING,
    "requires_action": S.PENDING,
    "succeeded": S.SUCCEEDED,
    "failed": S.FAILED,
    "canceled": S.CANCELED,
}


def _processor(refund: Refund, payment: Payment):
    """Where the payment was made: an operator's manual record is refunded manually too."""
    if payment.processor == Payment.Processor.MANUAL:
        from billing.payments.manual import ManualProcessor

        return ManualProcessor()
    return processor_for(refund.organization)


def refund_submit(*, refund: Refund) -> Refund:
    """Send a pending refund's card part to the processor and apply the answer. Runs outside
    any transaction; the idempotency key ``refund:<id>`` makes a repeated call (the sweeper,
    a retry) return the same processor refund."""
    if transaction.get_connection().in_atomic_block:
        raise RuntimeError("refund_submit calls the processor; call it after commit, outside transactions")
    refund = Refund.objects.select_related("organization", "payment").get(pk=refund.pk)
    if refund.status != S.PENDING or refund.processor_refund_id or refund.card_amount <= 0:
        return refund
    payment = refund.payment
    if payment is None or not payment.processor_payment_id:
        return refund_apply_outcome(
            refund=refund,
            status=S.FAILED,
            processor_refund_id="",
            failure_reason="no processor payment to refund",
            observed_at=clock.now(),
        )
    Refund.objects.filter(pk=refund.pk).update(submitted_at=clock.now())
    crash_point("refunds.before_processor_call")
    try:
        outcome = _processor(refund, payment).refund_create(
            payment_intent_id=payment.processor_payment_id,
            amount=refund.card_amount,
            reason=refund.reason,
            idempotency_key=refund.idempotency_key,
            metadata={
                "recur_refund_id": str(refund.pk),
                "recur_order_id": str(refund.order_id),
                "recur_organization_id": str(refund.organization_id),
            },
        )
    except ProcessorError as exc:
        if exc.retryable:
            # Unknown outcome: the sweeper submits again with the same key, or a webhook settles it.
            logger.warning("processor unreachable for %s: %s", refund.idempotency_key, exc)
            Refund.objects.filter(pk=refund.pk).update(failure_reason=f"retrying: {exc}"[:255])
            return Refund.objects.get(pk=refund.pk)
        return refund_apply_outcome(
            refund=refund,
            status=S.FAILED,
            processor_refund_id="",
            failure_reason=f"{exc.code or 'processor_error'}: {exc}",
            observed_at=clock.now(),
        )
    # Killed here, the processor has the refund and Recur does not know its id: the settle
    # sweep finds it by its metadata (billing.refunds.settlement) instead of sending it again.
    crash_point("refunds.after_processor_call")
    return refund_apply_outcome(
        refund=refund,
        status=OUTCOME_STATUS.get(outcome.status, S.PENDING),
        processor_refund_id=outcome.refund_id,
        failure_reason=outcome.failure_reason,
        observed_at=clock.now(),
    )


def refund_request(
    *,
    order: Order,
    amount: int | None,
    reason: str,
    comment: str = "",
    revoke_benefits: bool = False,
    currency: str | None = None,
    actor=None,
) -> Refund:
    """What the API, the backoffice and the demo do: ``refund_create`` (committed), then the
    card part sent at once with ``refund_submit``. The refund is committed before the
    processor is called, so if submitting breaks, the sweeper submits it again."""
    refund = refund_create(
        order=order,
        amount=amount,
        reason=reason,
        comment=comment,
        revoke_benefits=revoke_benefits,
        currency=currency,
        actor=actor,
    )
    if refund.status != S.PENDING:
        return refund  # nothing for the processor (all back to the wallet)
    try:
        refund_submit(refund=refund)
    except Exception:
        logger.exception("submitting %s failed; the sweeper retries", refund.idempotency_key)
    return Refund.objects.get(pk=refund.pk)


# Which moves a snapshot may make: pending -> anything final, succeeded -> failed (the
# processor can fail a succeeded refund later). failed and canceled are final.
MOVES = {
    S.PENDING: {S.SUCCEEDED, S.FAILED, S.CANCELED},
    S.SUCCEEDED: {S.FAILED},
    S.FAILED: set(),
    S.CANCELED: set(),
}


@retry_on_conflict
def refund_apply_outcome(
    *,
    refund: Refund,
    status: str,
    processor_refund_id: str = "",
    failure_reason: str = "",
    observed_at: datetime,
) -> Refund:
    """Apply what the processor says about a refund (its synchronous answer or an event).

    Facts fill blanks. The status only moves forward (``MOVES``), so duplicates and
    out-of-order reports converge; a snapshot older than the newest applied one moves
    nothing unless it moves forward, since the processor's own moves are one-way (its event
    times have one-second resolution, our synchronous answer is timed to the microsecond).
    A failed or canceled refund is reversed in the ledger and gives the order back its
    refundable amount, once."""
    if status not in MOVES:
        raise InvalidInput(f"Unknown refund status {status!r}.", field="status")
    with transaction.atomic():
        order_id = Refund.objects.filter(pk=refund.pk).values_list("order_id", flat=True).get()
        order = order_lock_with_subscription(order_id)  # the order first, as refund_create
        refund = lock_one(Refund.objects.select_related("organization", "customer", "payment"), refund.pk)
        shown = event_snapshot(obj=refund)
        changed: set[str] = set()
        if processor_refund_id and not refund.processor_refund_id:
            refund.processor_refund_id, changed = processor_refund_id, changed | {"processor_refund_id"}
        if failure_reason and status in (S.FAILED, S.CANCELED):
            refund.failure_reason = failure_reason[:255]
            changed.add("failure_reason")
        elif status == S.SUCCEEDED and refund.failure_reason.startswith("retrying:"):
            refund.failure_reason = ""
            changed.add("failure_reason")
        if refund.processor_state_at is None or observed_at > refund.processor_state_at:
            refund.processor_state_at = observed_at
            changed.add("processor_state_at")
        if status in MOVES[refund.status]:
            previous = refund.status
            refund.status = status
            changed.add("status")
            now = clock.now()
            if status == S.SUCCEEDED:
                refund.succeeded_at, changed = now, changed | {"succeeded_at"}
            else:
                refund.failed_at, changed = now, changed | {"failed_at"}
            refund.save(update_fields=[*changed, "updated_at"])
            changed.clear()
            if status in (S.FAILED, S.CANCELED) and previous in ACTIVE:
                ledger_post_refund_reversal(refund=refund)
                order.refresh_from_db()
                _recount(order, refund.payment)
        if changed:
            refund.save(update_fields=[*changed, "updated_at"])
        event_record_if_changed(type="refund.updated", obj=refund, before=shown)
    return refund
