"""What each Stripe event type means to Recur. Called by ``events.external_event_process``
inside a transaction; a receiver changes state only through services, so it is
idempotent and order-independent (see ``services.payment_apply_snapshot``)."""

import logging
from collections.abc import Callable
from dataclasses import dataclass

from billing.payments import services
from billing.payments.models import ExternalEvent, Payment


@dataclass(frozen=True)
class Handled:
    status: str
    note: str = ""

    @classmethod
    def processed(cls, note: str = "") -> "Handled":
        return cls(ExternalEvent.Status.PROCESSED, note)

    @classmethod
    def ignored(cls, note: str) -> "Handled":
        return cls(ExternalEvent.Status.IGNORED, note)

    @classmethod
    def deferred(cls, note: str) -> "Handled":
        return cls(ExternalEvent.Status.DEFERRED, note)


logger = logging.getLogger("recur.events")
# The note that starts on every payment event stored without being applied.
UNMATCHED_NOTE = "not applied"

Receiver = Callable[[ExternalEvent], Handled]
RECEIVERS: dict[str, Receiver] = {}


def receiver(*event_types: str) -> Callable[[Receiver], Receiver]:
    def register(func: Receiver) -> Receiver:
        for event_type in event_types:
            RECEIVERS[event_type] = func
        return func

    return register


def _id(value) -> str:
    """Stripe sends a related object as an id or, expanded, as an object."""
    if isinstance(value, dict):
        return str(value.get("id") or "")
    return str(value or "")


def _received(obj: dict, field: str) -> int | None:
    """What a succeeded intent or charge collected: ``field``, else its ``amount``."""
    for value in (obj.get(field), obj.get("amount")):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _unmatched(event: ExternalEvent, problem: str) -> Handled:
    """Stored, flagged for operators (the events card counts them), never applied elsewhere."""
    logger.warning("%s %s not applied: %s", event.type, event.event_id, problem)
    return Handled.ignored(f"{UNMATCHED_NOTE}: {problem}")


PAYMENT_INTENT_STATUS = {
    "payment_intent.succeeded": Payment.Status.SUCCEEDED,
    "payment_intent.payment_failed": Payment.Status.FAILED,
    "payment_intent.processing": Payment.Status.PROCESSING,
    "payment_intent.canceled": Payment.Status.CANCELED,
}


@receiver(*PAYMENT_INTENT_STATUS)
def on_payment_intent(event: ExternalEvent) -> Handled:
    intent = event.object
    payment, problem = services.payment_match(
        payment_intent_id=_id(intent.get("id")), metadata=intent.get("metadata") or {}
    )
    if payment is None:
        return _unmatched(event, problem)
    error = intent.get("last_payment_error") or {}
    status = PAYMENT_INTENT_STATUS[event.type]
    services.payment_apply_snapshot(
        payment=payment,
        status=status,
        observed_at=event.occurred_at,
        amount_received=_received(intent, "amount_received") if status == Payment.Status.SUCCEEDED else None,
        currency=str(intent.get("currency") or ""),
        facts={
            "processor_payment_id": _id(intent.get("id")),
            "processor_charge_id": _id(intent.get("latest_charge")),
            "payment_method_id": _id(intent.get("payment_method")) or _id(error.get("payment_method")),
            "decline_code": error.get("decline_code") or error.get("code") or "",
            "decline_message": error.get("message") or "",
        },
    )
    return Handled.processed()


CHARGE_STATUS = {
    "succeeded": Payment.Status.SUCCEEDED,
    "failed": Payment.Status.FAILED,
    "pending": Payment.Status.PROCESSING,
}


@receiver("charge.succeeded", "charge.failed", "charge.refunded", "charge.updated")
def on_charge(event: ExternalEvent) -> Handled:
    charge = event.object
    payment, problem = services.payment_match(
        payment_intent_id=_id(charge.get("payment_intent")),
        charge_id=_id(charge.get("id")),
        metadata=charge.get("metadata") or {},
    )
    if payment is None:
        return _unmatched(event, problem)
    outcome = charge.get("outcome") or {}
    status = CHARGE_STATUS.get(str(charge.get("status")), payment.status)
    services.payment_apply_snapshot(
        payment=payment,
        status=status,
        observed_at=event.occurred_at,
        amount_received=_received(charge, "amount_captured") if status == Payment.Status.SUCCEEDED else None,
        currency=str(charge.get("currency") or ""),
        facts={
            "processor_payment_id": _id(charge.get("payment_intent")),
            "processor_charge_id": _id(charge.get("id")),
            "payment_method_id": _id(charge.get("payment_method")),
            "risk_level": outcome.get("risk_level") or "",
            "risk_score": outcome.get("risk_score"),
            "balance_transaction_id": _id(charge.get("balance_transaction")),
            "decline_code": outcome.get("network_decline_code") or charge.get("failure_code") or "",
            "decline_message": charge.get("failure_message") or "",
        },
        amount_refunded=charge.get("amount_refunded"),
    )
    note = "refund records arrive with the refunds feature" if event.type == "charge.refunded" else ""
    return Handled.processed(note)


@receiver("setup_intent.succeeded")
def on_setup_intent(event: ExternalEvent) -> Handled:
    intent = event.object
    customer = services.customer_payment_method_saved(
        processor_customer_id=_id(intent.get("customer")), payment_method_id=_id(intent.get("payment_method"))
    )
    if customer is None:
        return Handled.ignored("no Recur customer for this SetupIntent")
    return Handled.processed()


DEFERRED = {
    "refund.created": "refunds",
    "refund.updated": "refunds",
    "refund.failed": "refunds",
    "charge.dispute.created": "disputes",
    "charge.dispute.updated": "disputes",
    "charge.dispute.closed": "disputes",
    "charge.dispute.funds_withdrawn": "disputes",
    "charge.dispute.funds_reinstated": "disputes",
    "payout.paid": "payouts",
    "payout.failed": "payouts",
    "payout.canceled": "payouts",
    "account.updated": "payouts",
}


def _deferred(event: ExternalEvent) -> Handled:
    return Handled.deferred(f"stored; handled once the {DEFERRED[event.type]} feature lands")


for _type in DEFERRED:
    RECEIVERS.setdefault(_type, _deferred)
