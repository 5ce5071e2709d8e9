"""The checkout's domain events (``checkout.*``), registered when the app is ready."""

from core.events.registry import register_object


def register() -> None:
    from billing.checkout.api import CheckoutSerializer
    from billing.checkout.models import Checkout

    register_object(
        "checkout",
        model=Checkout,
        serializer=CheckoutSerializer,
        events={
            "created": "A checkout session was opened.",
            "updated": "The customer changed the checkout, or its status moved (confirmed, reopened "
            "after a failed payment, succeeded).",
            "expired": "An open checkout reached its expiry time unpaid.",
        },
        prepare=lambda qs: qs.select_related("subscription"),
    )
