"""Refunds on a subscription's timeline (core.backoffice.timeline): each refund of its orders,
with who asked for it."""

from billing.money import format_amount
from billing.refunds.models import Refund
from core.audit import ActorKind
from core.backoffice.timeline import TimelineEvent, admin_change_url, order_label, timelines
from core.models import AuditEntry, actor_words

REFUND_TONES = {"pending": "warn", "succeeded": "good", "failed": "bad", "canceled": "muted"}
AT_THE_PROCESSOR = actor_words(ActorKind.SYSTEM, "refunded at the payment processor")


@timelines.source("subscriptions.subscription", kind="refund", permission="refunds.view_refund", rank=3)
def subscription_refunds(subscription, limit: int, now) -> list[TimelineEvent]:
    """Two queries: the refunds, then who requested those made in Recur."""
    refunds = list(
        Refund.objects.filter(order__subscription_id=subscription.pk)
        .select_related("order", "created_by")
        .order_by("-created_at")[:limit]
    )
    requested = {
        entry.object_id: entry.actor_display
        for entry in AuditEntry.objects.filter(
            object_type="refunds.refund", object_id__in=[str(r.pk) for r in refunds], action="refund.create"
        )
    }
    events = []
    for refund in refunds:
        if refund.origin != "recur":
            actor = AT_THE_PROCESSOR
        elif refund.created_by_id is not None:
            actor = refund.created_by.email
        else:
            actor = requested.get(str(refund.pk), "")
        parts = [f"order {order_label(refund.order)}", refund.get_reason_display().lower()]
        if refund.wallet_amount:
            parts.append(f"{format_amount(refund.wallet_amount, refund.currency)} back to the wallet")
        if refund.comment:
            parts.append(f"“{refund.comment}”")
        if refund.failure_reason:
            parts.append(refund.failure_reason)
        amount = format_amount(refund.amount, refund.currency)
        events.append(
            TimelineEvent(
                refund.created_at,
                "refund",
                f"Refund of {amount} {refund.get_status_display().lower()}",
                " · ".join(parts),
                admin_change_url("refunds", "refund", refund.pk),
                REFUND_TONES.get(refund.status, "info"),
                actor,
            )
        )
    return events
