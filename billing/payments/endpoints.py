"""The platform's Stripe webhook endpoint, as a dj-stripe ``WebhookEndpoint`` row."""

from django.conf import settings
from django.db import transaction
from djstripe.enums import WebhookEndpointValidation
from djstripe.models import WebhookEndpoint

from core.errors import InvalidInput


@transaction.atomic
def webhook_endpoint_ensure(
    *, base_url: str, uuid: str | None = None, secret: str | None = None
) -> WebhookEndpoint:
    """Create or update the endpoint row locally (no Stripe call); idempotent."""
    uuid = uuid or settings.STRIPE_WEBHOOK_UUID
    secret = secret or settings.STRIPE_WEBHOOK_SECRET
    if not secret.startswith("whsec_"):
        raise InvalidInput("A Stripe webhook secret starts with whsec_.", field="secret")
    url = f"{base_url.rstrip('/')}/stripe/webhook/{uuid}/"
    endpoint = WebhookEndpoint.objects.filter(djstripe_uuid=uuid).first()
    if endpoint is None:
        endpoint = WebhookEndpoint(id=f"we_recur_{str(uuid).replace('-', '')[:20]}", djstripe_uuid=uuid)
    endpoint.url = url
    endpoint.secret = secret
    endpoint.livemode = bool(settings.STRIPE_LIVE_MODE)
    endpoint.enabled_events = ["*"]
    endpoint.status = "enabled"
    endpoint.djstripe_tolerance = settings.STRIPE_WEBHOOK_TOLERANCE
    endpoint.djstripe_validation_method = WebhookEndpointValidation.verify_signature
    endpoint.save()
    return endpoint
