"""The subscription's domain events (``subscription.*``), registered when the app is ready.

Registering the kind again (with more event types) from elsewhere replaces the kind and adds
the types, so this module and the subscription lifecycle's own registration can coexist."""

from core.events.registry import register_object


def register() -> None:
    from billing.subscriptions.api import SubscriptionSerializer
    from billing.subscriptions.models import Subscription

    register_object(
        "subscription",
        model=Subscription,
        serializer=SubscriptionSerializer,
        events={
            "trial_will_end": "The subscription's trial ends in 3 days (sent once per trial end; "
            "a trial extended to a new end sends it again before that end).",
        },
    )
