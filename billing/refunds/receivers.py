"""Stripe's ``refund.*`` events. Registered in ``RECEIVERS`` when the app is ready (replacing
the "deferred" placeholder); each report goes through ``refund_apply_outcome``, so duplicate
and out-of-order events converge. ``charge.refunded`` stays with the payments receiver (it
updates the payment's refunded amount)."""

from billing.checkout.models import Checkout
from billing.orders.models import Order
from billing.payments.models import ExternalEvent, Payment
from billing.payments.receivers import Handled, _id, receiver
from billing.payments.services import payment_find, reference_id
from billing.refunds import services
from billing.refunds.models import Refund
from core.ids import parse_uuid


def _order_of(payment: Payment) -> Order | None:
    order_id = reference_id(payment, "order")
    if order_id is not None:
        return Order.objects.filter(pk=order_id, organization_id=payment.organization_id).first()
    checkout_id = reference_id(payment, "checkout")
    if checkout_id is not None and Checkout.objects.filter(pk=checkout_id).exists():
        return Order.objects.filter(checkout_id=checkout_id, organization_id=payment.organization_id).first()
    return None


def _find(obj: dict) -> Refund | None:
    """Our refund: its id in the processor refund's metadata, else the processor's id."""
    refund_id = str((obj.get("metadata") or {}).get("recur_refund_id") or "")
    if refund_id and parse_uuid(refund_id):
        refund = Refund.objects.filter(pk=refund_id).first()
        if refund is not None:
            return refund
    processor_id = _id(obj.get("id"))
    if processor_id:
        return Refund.objects.filter(processor_refund_id=processor_id).first()
    return None


@receiver("refund.created", "refund.updated", "refund.failed")
def on_refund(event: ExternalEvent) -> Handled:
    obj = event.object
    status = services.OUTCOME_STATUS.get(str(obj.get("status") or ""), Refund.Status.PENDING)
    if event.type == "refund.failed":
        status = Refund.Status.FAILED
    processor_id = _id(obj.get("id"))
    failure_reason = str(obj.get("failure_reason") or "")
    refund = _find(obj)
    if refund is not None:
        services.refund_apply_outcome(
            refund=refund,
            status=status,
            processor_refund_id=processor_id,
            failure_reason=failure_reason,
            observed_at=event.occurred_at,
        )
        return Handled.processed()
    payment = payment_find(
        payment_intent_id=_id(obj.get("payment_intent")), charge_id=_id(obj.get("charge")), metadata={}
    )
    if payment is None:
        return Handled.ignored("no Recur payment for this refund")
    order = _order_of(payment)
    if order is None:
        return Handled.ignored("the refunded payment belongs to no Recur order")
    services.refund_record_external(
        payment=payment,
        order=order,
        processor_refund_id=processor_id,
        amount=int(obj.get("amount") or 0),
        currency=str(obj.get("currency") or "").lower(),
        status=status,
        reason=str(obj.get("reason") or ""),
        failure_reason=failure_reason,
        observed_at=event.occurred_at,
    )
    return Handled.processed("refund made outside Recur recorded")
