"""The dispute as an event object (the catalogue's dispute.* types), payloads from the API's GET."""

from core.events.registry import register_object

DISPUTE_EVENTS = {
    "created": "A customer disputed a payment. `access_revoked_at` is set when the chargeback revoked access.",
    "updated": "A dispute changed (an inquiry escalated, funds withdrawn or reinstated, access revoked).",
    "closed": "A dispute was closed (won or lost). `access_restored_at` is set when a won dispute "
    "gave access back.",
}


def register() -> None:
    from billing.disputes.api import DisputeSerializer
    from billing.disputes.models import Dispute

    register_object("dispute", model=Dispute, serializer=DisputeSerializer, events=DISPUTE_EVENTS)
