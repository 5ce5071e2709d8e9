"""Locks of a subscription and of the rows an operation on it touches, in the order of
``core.locks``: the subscription, then its orders, then the customer. Every path that
changes a subscription and one of its orders (dunning, a payment settling, a refund or a
dispute that revokes access, a revocation voiding orders) takes them through here, so
they all queue on the subscription first and never wait on each other in a cycle."""

from collections.abc import Iterable

from billing.subscriptions.models import Subscription
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
