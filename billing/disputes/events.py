"""The dispute's domain events (``dispute.*``), registered when the app is ready."""

from core.events.registry import register_object


def register() -> None:
    from billing.disputes.api import DisputeSerializer
    from billing.disputes.models import Dispute

    register_object(
        "dispute",
        model=Dispute,
        serializer=DisputeSerializer,
        events={
            "created": "A customer disputed a payment (an inquiry or a chargeback).",
            "updated": "A dispute's status, amounts, fee or access changed while it is open.",
            "closed": "A dispute was closed: won, lost or a warning closed.",
        },
    )
