"""``charge.dispute.*`` events: each carries a snapshot of the dispute, applied by
``services.dispute_apply_snapshot`` (idempotent, order-independent). Imported by
``DisputesConfig.ready`` so these receivers replace the "deferred" placeholders."""

from billing.disputes import services
from billing.payments.models import ExternalEvent
from billing.payments.receivers import Handled, receiver
from core.errors import InvalidInput

DISPUTE_EVENTS = (
    "charge.dispute.created",
    "charge.dispute.updated",
    "charge.dispute.closed",
    "charge.dispute.funds_withdrawn",
    "charge.dispute.funds_reinstated",
)


@receiver(*DISPUTE_EVENTS)
def on_dispute(event: ExternalEvent) -> Handled:
    try:
        dispute = services.dispute_apply_snapshot(
            payload=event.object, observed_at=event.occurred_at, event_type=event.type
        )
    except InvalidInput as exc:
        return Handled.ignored(f"malformed dispute: {exc.detail}")
    if dispute is None:
        return Handled.ignored("no Recur payment for this dispute's charge")
    return Handled.processed(f"dispute {dispute.processor_dispute_id} is {dispute.status}")
