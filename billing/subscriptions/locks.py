"""Locks of a subscription and of the rows an operation on it touches, in the order of
``core.locks``: the subscription, then its orders, then the customer. Every path that
changes a subscription and one of its orders (dunning, a payment settling, a refund or a
dispute that revokes access, a revocation voiding orders) takes them through here, so
they all queue on the subscription first and never wait on each other in a cycle."""

from collections.abc import Iterable

from accounts.locks import customer_lock
from billing.orders.locks import order_lock
from billing.orders.models import Order
from billing.subscriptions.models import Subscription
from core.ids import parse_uuid
from core.locks import lock_many, lock_one

SUBSCRIPTION_RELATED = ("organization", "customer", "product", "price", "discount")


def subscription_lock(subscription_id, *, related: tuple[str, ...] = SUBSCRIPTION_RELATED) -> Subscription:
    """Lock one subscription row; ``related`` rows are read with it, not locked."""
    queryset = Subscription.objects.select_related(*related) if related else Subscription.objects.all()
    subscription = lock_one(queryset, subscription_id)
    if subscription is None:
        raise Subscription.DoesNotExist(subscription_id)
    return subscription


def subscriptions_lock(subscription_ids: Iterable, **options) -> list[Subscription]:
    """Lock several subscriptions in id order (``skip_locked=True`` leaves out busy ones)."""
    return lock_many(Subscription, subscription_ids, **options)


def order_lock_with_subscription(
    order_id, *, related: tuple[str, ...] = (), customer: bool = False
) -> Order | None:
    """Lock an order after its subscription (and then, with ``customer``, its customer).
    The subscription an order belongs to never changes, so it is read first without a lock."""
    owner = Order.objects.filter(pk=order_id).values_list("subscription_id", "customer_id").first()
    if owner is None:
        return None
    subscription_id, customer_id = owner
    if subscription_id is not None:
        lock_one(Subscription, subscription_id)
    order = order_lock(order_id, related=related)
    if customer and order is not None:
        customer_lock(customer_id)
    return order


def order_payment_lock(payment) -> None:
    """``PAYMENT_LOCK_HOOKS["order"]``: before a payment of an order is locked, lock the
    order's subscription, the order and its customer (whose wallet the order may draw on)."""
    prefix, _, order_id = payment.reference.partition(":")
    if prefix == "order" and parse_uuid(order_id):
        order_lock_with_subscription(order_id, customer=True)
