"""How a subscription reacts to its orders' events (registered in ``apps.py``).

Each consumer runs after the order's change committed, in a transaction of its own, and
decides from the rows as they are now (locked: the subscription, then the order), so a
duplicate or a late retry changes nothing: a past-due mark for an order paid meanwhile, or
a second "active", is skipped. Times are the event's, not the consumer's."""

from datetime import timedelta

from billing.orders.locks import order_lock
from billing.orders.models import Order
from billing.orders.selectors import order_latest_attempt
from billing.payments.models import Payment
from billing.subscriptions.events import subscription_event_record
from billing.subscriptions.locks import subscription_lock
from billing.subscriptions.models import Subscription

S = Subscription.Status
ORDER_TYPES = ("order.paid", "order.updated", "order.dunning_exhausted")


def _locked(event) -> tuple[Subscription, Order] | tuple[None, None]:
    subscription_id = (
        Order.objects.filter(pk=event.object_id).values_list("subscription_id", flat=True).first()
    )
    if subscription_id is None:
        return None, None
    subscription = subscription_lock(subscription_id, related=("organization",))
    return subscription, order_lock(event.object_id)


def subscription_on_order_event(event) -> None:
    subscription, order = _locked(event)
    if subscription is None:
        return
    if event.type == "order.paid":
        _paid(subscription, order)
    elif event.type == "order.updated":
        _maybe_past_due(subscription, order, event.occurred_at)
    elif event.type == "order.dunning_exhausted":
        _dunning_gave_up(subscription, order, event.occurred_at)


def _paid(subscription: Subscription, order: Order) -> None:
    if order.is_paid and subscription.status in (S.PAST_DUE, S.UNPAID):
        subscription.status = S.ACTIVE
        subscription.past_due_at = None
        subscription.benefits_revoke_at = None  # paid within the grace period: access stays
        subscription.save(update_fields=["status", "past_due_at", "benefits_revoke_at", "updated_at"])
        subscription_event_record(type="subscription.active", subscription=subscription)


def _maybe_past_due(subscription: Subscription, order: Order, at) -> None:
    """A payment of a still-unpaid order failed (automatic or a retry): past due."""
    if order.status != Order.Status.PENDING or subscription.status not in (S.ACTIVE, S.TRIALING):
        return
    latest = order_latest_attempt(order)
    if latest is None or latest.status not in (Payment.Status.FAILED, Payment.Status.CANCELED):
        return
    subscription.status = S.PAST_DUE
    subscription.past_due_at = at
    # Access lasts the grace period from the first failure unless a payment recovers it.
    subscription.benefits_revoke_at = at + timedelta(days=subscription.organization.benefit_grace_days)
    subscription.save(update_fields=["status", "past_due_at", "benefits_revoke_at", "updated_at"])
    subscription_event_record(type="subscription.past_due", subscription=subscription)


def _dunning_gave_up(subscription: Subscription, order: Order, at) -> None:
    """The organization's final action: unpaid (waits for the customer) or canceled now;
    benefits go after the grace period either way."""
    still_given_up = not order.is_paid and order.next_payment_attempt_at is None
    if not still_given_up or subscription.status not in (S.ACTIVE, S.TRIALING, S.PAST_DUE):
        return
    organization = subscription.organization
    revoked_already = subscription.status == S.PAST_DUE and subscription.benefits_revoke_at is None
    if organization.dunning_final_action == "unpaid":
        subscription.status = S.UNPAID
        kind = "subscription.updated"
    else:
        subscription.status = S.CANCELED
        subscription.canceled_at = subscription.canceled_at or at
        subscription.ended_at = at
        subscription.cancellation_reason = subscription.cancellation_reason or "payment_failed"
        kind = "subscription.canceled"
    # The grace period runs from the first failure; if it is over, access goes now, unless
    # it went already (past due with no revocation left pending: recorded once, not twice).
    if not revoked_already:
        grace_end = (subscription.past_due_at or at) + timedelta(days=organization.benefit_grace_days)
        subscription.benefits_revoke_at = max(grace_end, at)
    subscription.save()
    subscription_event_record(type=kind, subscription=subscription)
