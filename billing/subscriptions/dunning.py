"""What dunning means for a subscription, and its benefits after the grace period.

Collection and dunning of orders live in ``billing.orders.collection`` (re-exported here for
callers that knew them here). A subscription learns from the orders' events
(``billing.subscriptions.consumers``): a failed payment makes it ``past_due``, a paid order
``active`` again, and when dunning gives up it is canceled or marked unpaid (organization
setting), its benefits going after the grace period (``benefits_revoke_due``)."""

from django.db import transaction

from billing.orders.collection import (  # noqa: F401 (their home is orders)
    AUTOMATIC,
    COLLECTION_LEASE,
    HARD_DECLINES,
    IN_FLIGHT,
    _payment_for,
    dunning_run,
    first_attempt_trigger,
    order_collections_sweep,
    order_payment_collect,
    orders_collect_due,
)
from billing.subscriptions.events import subscription_event_record
from billing.subscriptions.models import Subscription
from core import clock
from core.locks import lock_one


def benefits_revoke_due(*, limit: int = 500) -> int:
    """Record ``subscription.revoked`` for subscriptions whose grace period ended, once each:
    the benefits feature revokes access on that event."""
    now = clock.now()
    done = 0
    due = Subscription.objects.filter(benefits_revoke_at__lte=now).values_list("pk", flat=True)[:limit]
    for subscription_id in list(due):
        with transaction.atomic():
            subscription = lock_one(
                Subscription.objects.filter(benefits_revoke_at__lte=now).select_related("organization"),
                subscription_id,
                skip_locked=True,
            )
            if subscription is None:
                continue
            subscription.benefits_revoke_at = None
            subscription.save(update_fields=["benefits_revoke_at", "updated_at"])
            subscription_event_record(type="subscription.revoked", subscription=subscription)
            done += 1
    return done
