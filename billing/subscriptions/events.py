"""The subscription as an event object: its event types (the catalogue) and its payloads,
the API's GET representation (``SubscriptionSerializer``)."""

from collections.abc import Sequence

from billing.subscriptions.models import Subscription
from core.api.representation import compile_representation
from core.events.registry import register_object
from core.events.services import event_record, events_record_bulk

SUBSCRIPTION_EVENTS = {
    "created": "A subscription was created (a checkout for a recurring product succeeded).",
    "updated": "A subscription changed in a way no other type names: a plan or seat change, a "
    "scheduled pause, a trial extended, a discount, its period ending after a cancellation, "
    "marked unpaid when dunning gave up.",
    "active": "A subscription became active: created paid, or paid again after past_due/unpaid.",
    "canceled": "A subscription was canceled: set to end at its period's end, or ended now "
    "(revoked by an operator, a refund or a dispute; dunning gave up). "
    "`benefits_revoke_at` says when access goes.",
    "uncanceled": "A cancellation at period end was undone.",
    "revoked": "The customer's access ends now: the grace period after the subscription ended "
    "is over (benefits are revoked on this event).",
    "past_due": "A payment for the subscription failed; dunning retries it.",
    "paused": "A subscription was paused at the end of its period.",
    "resumed": "A paused subscription was resumed (a new period starts and is billed).",
    "cycled": "A subscription renewed: a new period started and its order was written.",
    "trial_will_end": "A subscription's trial ends in 3 days.",
}


def register() -> None:
    from billing.subscriptions.api import SubscriptionSerializer  # the API's GET

    register_object(
        "subscription", model=Subscription, serializer=SubscriptionSerializer, events=SUBSCRIPTION_EVENTS
    )


def subscription_event_record(*, type: str, subscription: Subscription) -> None:
    """Record an event of one subscription in the caller's transaction (after its save)."""
    event_record(type=type, obj=subscription, organization=subscription.organization)


def subscriptions_events_record_bulk(*, type: str, subscriptions: Sequence[Subscription]) -> None:
    """One event each, payloads built from the rows in memory (the renewal chunk)."""
    if not subscriptions:
        return
    from billing.subscriptions.api import SubscriptionSerializer

    represent = compile_representation(SubscriptionSerializer)
    events_record_bulk(type=type, objects=subscriptions, payloads=[represent(s) for s in subscriptions])
