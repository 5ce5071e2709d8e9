"""Benefits follow billing through its events: any moment that can change what a
subscription or a one-time order should hold reconciles that scope's grants, and a renewal
cycles them. The handlers decide from the rows as they are now, so a duplicate, a late retry
or events out of order all end in the same grants."""

from benefits.grants import grants_reconcile, grants_request_cycle
from billing.disputes.models import Dispute
from billing.orders.models import Order
from billing.refunds.models import Refund
from billing.subscriptions.models import Subscription
from core.events.registry import register_consumer

SUBSCRIPTION_TYPES = [
    "subscription.created",
    "subscription.updated",
    "subscription.active",
    "subscription.canceled",
    "subscription.uncanceled",
    "subscription.revoked",
    "subscription.past_due",
    "subscription.paused",
    "subscription.resumed",
    "subscription.cycled",
]
ORDER_TYPES = ["order.paid", "order.updated"]
REFUND_TYPES = ["refund.created", "refund.updated"]
DISPUTE_TYPES = ["dispute.created", "dispute.updated", "dispute.closed"]


def _reconcile_order(order_id, reason: str) -> None:
    order = Order.objects.filter(pk=order_id).first()
    if order is None:
        return
    if order.subscription_id is not None:
        subscription = Subscription.objects.filter(pk=order.subscription_id).first()
        if subscription is not None:
            grants_reconcile(subscription=subscription, reason=reason)
    else:
        grants_reconcile(order=order, reason=reason)


def benefits_on_event(event) -> None:
    kind, _, action = event.type.partition(".")
    if kind == "subscription":
        subscription = Subscription.objects.filter(pk=event.object_id).first()
        if subscription is None:
            return
        grants_reconcile(subscription=subscription, reason=_subscription_reason(subscription, action))
        if action == "cycled":
            grants_request_cycle(subscription=subscription)
    elif kind == "order":
        _reconcile_order(event.object_id, reason="order refunded or voided")
    elif kind == "refund":
        order_id = Refund.objects.filter(pk=event.object_id).values_list("order_id", flat=True).first()
        _reconcile_order(order_id, reason="refunded with benefits revoked")
    elif kind == "dispute":
        order_id = Dispute.objects.filter(pk=event.object_id).values_list("order_id", flat=True).first()
        _reconcile_order(order_id, reason="payment disputed")


def _subscription_reason(subscription: Subscription, action: str) -> str:
    if subscription.status == Subscription.Status.PAUSED:
        return "subscription paused"
    if subscription.status in (Subscription.Status.PAST_DUE, Subscription.Status.UNPAID):
        return "subscription unpaid after the grace period"
    return "subscription ended"


def benefits_on_events(events) -> None:
    for event in events:
        benefits_on_event(event)


def register() -> None:
    register_consumer(
        "benefits",
        types=SUBSCRIPTION_TYPES + ORDER_TYPES + REFUND_TYPES + DISPUTE_TYPES,
        handle=benefits_on_event,
        handle_many=benefits_on_events,
    )
