"""Stripe dispute objects and their signed ``charge.dispute.*`` events (localstripe has no
disputes), delivered to the webhook endpoint like Stripe would."""

import uuid
from datetime import UTC, datetime, timedelta

from core import clock
from tests.payments import stripe_events

T0 = 1_900_000_000  # processor time of the first event; later events count up from it
T0_AT = datetime.fromtimestamp(T0, tz=UTC)


def balance_transaction(amount: int, fee: int = 0, category: str = "dispute") -> dict:
    return {
        "id": f"txn_{uuid.uuid4().hex[:24]}",
        "object": "balance_transaction",
        "amount": amount,
        "fee": fee,
        "net": amount - fee,
        "currency": "usd",
        "type": "adjustment",
        "reporting_category": category,
    }


def evidence_due_in(*, days: float) -> int:
    return int((clock.now() + timedelta(days=days)).timestamp())


def dispute(
    payment,
    status: str = "needs_response",
    *,
    id: str = "dp_test_1",
    amount: int | None = None,
    currency: str | None = None,
    reason: str = "fraudulent",
    withdrawn: bool = False,
    reinstated: bool = False,
    due_by: int | None = None,
    fee: int = 1500,
    **fields,
) -> dict:
    """A Stripe dispute object on ``payment``'s charge. ``withdrawn``/``reinstated`` put the
    matching balance transactions in ``balance_transactions``, as Stripe does."""
    amount = payment.amount if amount is None else amount
    transactions = []
    if withdrawn:
        transactions.append(balance_transaction(-amount, fee=fee))
    if reinstated:
        transactions.append(balance_transaction(amount, category="dispute_reversal"))
    if due_by is None:
        due_by = evidence_due_in(days=7)
    return {
        "id": id,
        "object": "dispute",
        "amount": amount,
        "currency": currency or payment.currency,
        "charge": payment.processor_charge_id or f"ch_{payment.pk.hex[:24]}",
        "payment_intent": payment.processor_payment_id,
        "reason": reason,
        "status": status,
        "evidence": {},
        "evidence_details": {
            "due_by": due_by,
            "has_evidence": False,
            "past_due": False,
            "submission_count": 0,
        },
        "balance_transactions": transactions,
        "is_charge_refundable": False,
        "livemode": False,
        "metadata": {},
        "created": T0,
        **fields,
    }


def event(event_type: str, obj: dict, *, at: int = T0, event_id: str | None = None) -> dict:
    return stripe_events.event(f"charge.dispute.{event_type}", obj, created=at, event_id=event_id)


def deliver(client, endpoint, *payloads) -> None:
    for payload in payloads:
        response = stripe_events.post(client, endpoint, payload)
        assert response.status_code == 200, response.content


def lifecycle(payment, *, outcome: str = "won", id: str = "dp_test_1", **options) -> list[dict]:
    """The events of a card chargeback, in the order Stripe sends them: created (funds not
    yet in the snapshot), funds_withdrawn, updated (evidence submitted), closed, and for a
    won dispute funds_reinstated. One second apart."""
    options.setdefault("due_by", evidence_due_in(days=7))
    events = [
        event("created", dispute(payment, id=id, **options), at=T0),
        event("funds_withdrawn", dispute(payment, id=id, withdrawn=True, **options), at=T0 + 1),
        event("updated", dispute(payment, "under_review", id=id, withdrawn=True, **options), at=T0 + 2),
    ]
    won = outcome == "won"
    closed = dispute(payment, outcome, id=id, withdrawn=True, reinstated=won, **options)
    events.append(event("closed", closed, at=T0 + 3))
    if won:
        events.append(event("funds_reinstated", closed, at=T0 + 4))
    return events
