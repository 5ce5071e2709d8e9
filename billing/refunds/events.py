"""The refund as an event object (the catalogue's refund.* types), payloads from the API's GET."""

from core.events.registry import register_object

REFUND_EVENTS = {
    "created": "A refund was made. `revoke_benefits` says whether the customer loses what the order gave.",
    "updated": "A refund's status changed (the processor's answer).",
}


def register() -> None:
    from billing.refunds.api import RefundSerializer
    from billing.refunds.models import Refund

    register_object("refund", model=Refund, serializer=RefundSerializer, events=REFUND_EVENTS)
