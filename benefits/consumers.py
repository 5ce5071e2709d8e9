"""Benefits follow billing through its events: any moment that can change what a
subscription or a one-time order should hold reconciles that scope's grants, and a renewal
cycles them. The handlers decide from the rows as they are now, so a duplicate, a late retry
or events out of order all end in the same grants.

Events come in batches (a renewal run records one ``subscription.cycled`` per subscription):
a batch reads its scopes, their products' benefits, which of them hold and which have grants
in a few queries, and skips every scope whose product unlocks nothing and that holds no
grant, so renewals of products without benefits cost the consumer almost nothing."""

from benefits import selectors
from benefits.grants import grants_reconcile, grants_request_cycle_many
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


def _order_ids(events) -> set:
    """The orders these order, refund and dispute events are about."""
    ids, refunds, disputes = set(), set(), set()
    for event in events:
        kind = event.type.partition(".")[0]
        if kind == "order":
            ids.add(event.object_id)
        elif kind == "refund":
            refunds.add(event.object_id)
        elif kind == "dispute":
            disputes.add(event.object_id)
    if refunds:
        ids |= set(Refund.objects.filter(pk__in=refunds).values_list("order_id", flat=True))
    if disputes:
        ids |= set(Dispute.objects.filter(pk__in=disputes).values_list("order_id", flat=True))
    return {str(pk) for pk in ids if pk is not None}


def benefits_on_events(events) -> None:
    """Reconcile each scope the events touch whose grants differ from what it should hold
    (once, however many events name it), then cycle the renewed subscriptions' grants."""
    events = list(events)
    subscription_ids = {e.object_id for e in events if e.type.startswith("subscription.")}
    cycled = {e.object_id for e in events if e.type == "subscription.cycled"}
    order_ids = _order_ids(events)
    orders = []
    if order_ids:
        for order in Order.objects.filter(pk__in=order_ids):
            if order.subscription_id is not None:  # a subscription's order: the subscription holds
                subscription_ids.add(str(order.subscription_id))
            else:
                orders.append(order)
    subscriptions = list(Subscription.objects.filter(pk__in=subscription_ids)) if subscription_ids else []
    benefits = selectors.product_benefit_ids_many(
        {s.product_id for s in subscriptions} | {o.product_id for o in orders if o.product_id}
    )
    held = selectors.scope_grants(
        subscription_ids=[s.pk for s in subscriptions], order_ids=[o.pk for o in orders]
    )
    # A scope whose product unlocks nothing and that holds no grant has nothing to do.
    subscriptions = [s for s in subscriptions if s.product_id in benefits or ("s", s.pk) in held]
    orders = [o for o in orders if o.product_id in benefits or ("o", o.pk) in held]
    if not subscriptions and not orders:
        return
    holding_subscriptions, holding_orders = selectors.holding_ids(
        subscription_ids=[s.pk for s in subscriptions], order_ids=[o.pk for o in orders]
    )
    for subscription in sorted(subscriptions, key=lambda s: str(s.pk)):
        holds = subscription.pk in holding_subscriptions
        benefit_ids = benefits.get(subscription.product_id, []) if holds else []
        if not selectors.grants_match(held.get(("s", subscription.pk), []), benefit_ids):
            grants_reconcile(subscription=subscription, holds=holds, benefit_ids=benefit_ids)
    for order in sorted(orders, key=lambda o: str(o.pk)):
        holds = order.pk in holding_orders
        benefit_ids = benefits.get(order.product_id, []) if holds else []
        if not selectors.grants_match(held.get(("o", order.pk), []), benefit_ids):
            grants_reconcile(order=order, holds=holds, benefit_ids=benefit_ids)
    renewed = [s.pk for s in subscriptions if str(s.pk) in cycled]
    if renewed:
        grants_request_cycle_many(subscription_ids=renewed)


def benefits_on_event(event) -> None:
    benefits_on_events([event])


def register() -> None:
    register_consumer(
        "benefits",
        types=SUBSCRIPTION_TYPES + ORDER_TYPES + REFUND_TYPES + DISPUTE_TYPES,
        handle=benefits_on_event,
        handle_many=benefits_on_events,
    )
