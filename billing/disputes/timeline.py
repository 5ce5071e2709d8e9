"""Disputes on a subscription's timeline (core.backoffice.timeline): opened by the customer's
bank, decided by the card network."""

from billing.disputes.models import Dispute
from billing.money import format_amount
from core.audit import ActorKind
from core.backoffice.timeline import TimelineEvent, admin_change_url, day, order_label, timelines
from core.models import actor_words

THE_BANK = actor_words(ActorKind.SYSTEM, "the customer's bank, through the payment processor")


@timelines.source("subscriptions.subscription", kind="dispute", permission="disputes.view_dispute", rank=3)
def subscription_disputes(subscription, limit: int, now) -> list[TimelineEvent]:
    disputes = (
        Dispute.objects.filter(order__subscription_id=subscription.pk)
        .select_related("order")
        .order_by("-created_at")[:limit]
    )
    events = []
    for dispute in disputes:
        url = admin_change_url("disputes", "dispute", dispute.pk)
        amount = format_amount(dispute.amount, dispute.currency)
        parts = [f"order {order_label(dispute.order)}"] if dispute.order_id else []
        if dispute.reason:
            parts.append(dispute.reason.replace("_", " "))
        if dispute.evidence_due_by and dispute.closed_at is None:
            parts.append(f"evidence due {day(dispute.evidence_due_by)}")
        if dispute.access_revoked_at:
            parts.append("access revoked")
        events.append(
            TimelineEvent(
                dispute.created_at,
                "dispute",
                f"Dispute of {amount} opened",
                " · ".join(parts),
                url,
                "bad",
                THE_BANK,
            )
        )
        if dispute.closed_at is not None:
            status = dispute.get_status_display().lower().replace("_", " ")
            tone = "good" if dispute.status == Dispute.Status.WON else "muted"
            events.append(
                TimelineEvent(dispute.closed_at, "dispute", f"Dispute {status}", amount, url, tone, THE_BANK)
            )
    return events
