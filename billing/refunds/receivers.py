"""Stripe's refund reports: ``refund.created|updated|failed`` and the legacy
``charge.refund.updated`` carry a refund object; ``charge.refunded`` and ``charge.updated``
carry the charge with its cumulative ``amount_refunded`` and a (maybe truncated) refunds list.
Registered when the app is ready, replacing the "deferred" placeholders and wrapping the
payments receiver of those charge events (which still applies the charge's payment facts).
Everything goes through ``billing.refunds.reports``, so any delivery order converges."""

import logging

from billing.payments.models import ExternalEvent
from billing.payments.receivers import Handled, _id, on_charge, receiver
from billing.payments.services import payment_find
from billing.refunds import reports

logger = logging.getLogger("recur.refunds")

REFUND_OBJECT_EVENTS = ("refund.created", "refund.updated", "refund.failed", "charge.refund.updated")
CHARGE_EVENTS = ("charge.refunded", "charge.updated")


def _refused(event: ExternalEvent, exc: reports.RefundReportRefused) -> Handled:
    logger.warning("refused %s %s: %s", event.type, event.event_id, exc.detail)
    return Handled.ignored(f"refused: {exc.detail}")


@receiver(*REFUND_OBJECT_EVENTS)
def on_refund(event: ExternalEvent) -> Handled:
    try:
        report = reports.ProcessorRefund.from_object(event.object, event_type=event.type)
        refund = reports.refund_report_apply(report=report, observed_at=event.occurred_at)
    except reports.RefundReportRefused as exc:
        return _refused(event, exc)
    if refund is None:
        return Handled.ignored("no Recur payment (or no order of it) for this refund's charge")
    return Handled.processed(f"refund {refund.pk} is {refund.status}")


@receiver(*CHARGE_EVENTS)
def on_charge_refunds(event: ExternalEvent) -> Handled:
    charge = event.object
    payment = payment_find(
        payment_intent_id=_id(charge.get("payment_intent")),
        charge_id=_id(charge.get("id")),
        metadata=charge.get("metadata") or {},
    )
    if payment is None:
        return on_charge(event)  # ignored there, with its note
    try:
        refunds = reports.refund_apply_charge_snapshot(
            payment=payment, charge=charge, observed_at=event.occurred_at
        )
    except reports.RefundReportRefused as exc:
        return _refused(event, exc)
    handled = on_charge(event)
    return Handled(handled.status, f"{len(refunds)} refund(s) applied" if refunds else "")
