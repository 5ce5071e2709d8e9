"""The customer's domain events (``customer.*``), registered when the app is ready."""

from core.events.registry import register_object


def register() -> None:
    from accounts.api import CustomerSerializer
    from accounts.models import Customer

    register_object(
        "customer",
        model=Customer,
        serializer=CustomerSerializer,
        events={
            "created": "A customer was created (through the API, the backoffice or a checkout).",
            "updated": "A field of the customer an integrator sees changed.",
            "deleted": "A customer was deleted; the payload is the customer as it was.",
        },
    )
