"""Stripe webhooks in, through dj-stripe.

dj-stripe's view verifies the signature (300 s tolerance) and stores every delivery
as a ``WebhookEventTrigger``. Its object mirroring would call the Stripe API inside
the request, so ``DJSTRIPE_WEBHOOK_EVENT_CALLBACK`` hands the verified event to
``webhook_event_accept`` instead: it records an ``ExternalEvent`` (unique by event
id) and enqueues processing after commit. Nothing here needs the network.
"""

import logging

from django.http import HttpResponse, HttpResponseBadRequest, HttpResponseNotFound
from djstripe.models import WebhookEndpoint, WebhookEventTrigger
from djstripe.models.webhooks import get_remote_ip
from djstripe.views import ProcessWebhookView

from billing.payments import events

logger = logging.getLogger("recur.webhooks")

# dj-stripe lets this header replace the endpoint secret when DEBUG is on; we never do.
SECRET_OVERRIDE_HEADER = "x-djstripe-webhook-secret"


def webhook_event_accept(trigger: WebhookEventTrigger, api_key: str | None = None) -> None:
    """dj-stripe's callback for a verified delivery; runs inside its transaction."""
    events.external_event_record(payload=trigger.json_body, delivery=trigger)
    trigger.processed = True


def _reject(request, endpoint: WebhookEndpoint | None, reason: str) -> WebhookEventTrigger:
    logger.warning("rejected Stripe webhook delivery: %s", reason)
    return WebhookEventTrigger.objects.create(
        headers=dict(request.headers),
        body=request.body.decode(errors="replace"),
        remote_ip=get_remote_ip(request),
        webhook_endpoint=endpoint,
        valid=False,
        exception=reason[:128],
    )


class StripeWebhookView(ProcessWebhookView):
    """dj-stripe's webhook view (same verification and storage), that also stores and
    explains the deliveries dj-stripe would drop unrecorded."""

    def post(self, request, uuid):
        endpoint = WebhookEndpoint.objects.filter(djstripe_uuid=uuid).first()
        if endpoint is None:
            _reject(request, None, f"unknown webhook endpoint {uuid}")
            return HttpResponseNotFound("unknown webhook endpoint")
        if "stripe-signature" not in request.headers:
            _reject(request, endpoint, "missing Stripe-Signature header")
            return HttpResponseBadRequest("missing Stripe-Signature header")
        if SECRET_OVERRIDE_HEADER in request.headers:
            _reject(request, endpoint, f"{SECRET_OVERRIDE_HEADER} is not accepted")
            return HttpResponseBadRequest(f"{SECRET_OVERRIDE_HEADER} is not accepted")
        trigger = WebhookEventTrigger.from_request(request, webhook_endpoint=endpoint)
        if not trigger.valid:
            trigger.exception = "invalid signature, stale timestamp or malformed body"
            trigger.save(update_fields=["exception"])
            logger.warning("rejected Stripe webhook delivery %s: verification failed", trigger.id)
            return HttpResponseBadRequest("signature verification failed")
        return HttpResponse("ok")
