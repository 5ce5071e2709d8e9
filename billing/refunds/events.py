"""The refund's domain events (``refund.*``), registered when the app is ready."""

from core.events.registry import register_object


def register() -> None:
    from billing.refunds.api import RefundSerializer
    from billing.refunds.models import Refund

    register_object(
        "refund",
        model=Refund,
        serializer=RefundSerializer,
        events={
            "created": "A refund was made, through Recur or reported by the processor.",
            "updated": "A refund's status or processor facts changed (succeeded, failed, canceled).",
        },
    )
