"""The order as an event object: its event types (the catalogue) and its payloads.

Payloads are the API's GET representation (``OrderSerializer``). Batch writers build them
from the rows in memory (``order_payloads``): the renewal path records its events in the
same chunk transaction as its orders, without reading them back."""

from collections import defaultdict
from collections.abc import Sequence

from billing.orders.models import Order, OrderItem
from core.api.representation import compile_representation
from core.events.registry import register_object

ORDER_EVENTS = {
    "created": "An order was written: a purchase, a subscription's first order, a renewal, a change invoice.",
    "paid": "An order was paid (it has its invoice number and paid_at).",
    "updated": "An order changed otherwise: a payment attempt failed (dunning scheduled its next "
    "attempt), a payment was held or released, the order was voided.",
    "refunded": "Part or all of a paid order was refunded (refunded_amount and status say how much).",
    "dunning_exhausted": "Automatic collection of an order gave up: its last scheduled attempt failed. "
    "Its subscription is then canceled or marked unpaid (the organization's setting).",
}


def register() -> None:
    from billing.orders.api import OrderSerializer  # the API's GET

    register_object(
        "order",
        model=Order,
        serializer=OrderSerializer,
        events=ORDER_EVENTS,
        prepare=lambda orders: orders.prefetch_related("items"),
    )


def order_payloads(orders: Sequence[Order]) -> list[dict]:
    """The API's representation of each order, items included: from ``order._event_items``
    when the writer attached them (rows not read back), else read in one query."""
    from billing.orders.api import OrderItemSerializer, OrderSerializer

    represent = compile_representation(OrderSerializer, exclude=("items",))
    represent_item = compile_representation(OrderItemSerializer)
    missing = [o.pk for o in orders if not hasattr(o, "_event_items")]
    read: dict = defaultdict(list)
    if missing:
        for item in OrderItem.objects.filter(order_id__in=missing).order_by("created_at"):
            read[item.order_id].append(item)
    payloads = []
    for order in orders:
        items = getattr(order, "_event_items", None)
        payload = represent(order)
        payload["items"] = [represent_item(item) for item in (items if items is not None else read[order.pk])]
        payloads.append(payload)
    return payloads
