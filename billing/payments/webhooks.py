"""Stripe webhooks in, through dj-stripe's models.

Every delivery is stored as a dj-stripe ``WebhookEventTrigger`` and verified by
dj-stripe (signature, the endpoint's 300 s tolerance). dj-stripe's own processing
would mirror Stripe objects by calling the Stripe API inside the request; instead a
verified event becomes an ``ExternalEvent`` (unique by event id) whose processing is
enqueued after commit. Nothing here needs the network.
"""

import logging
from traceback import format_exc

from django.db import transaction
from django.http import HttpResponse, HttpResponseBadRequest, HttpResponseNotFound, HttpResponseServerError
from djstripe.enums import WebhookEndpointValidation
from djstripe.models import WebhookEndpoint, WebhookEventTrigger
from djstripe.models.webhooks import get_remote_ip
from djstripe.views import ProcessWebhookView

from billing.payments import events

logger = logging.getLogger("recur.webhooks")

# dj-stripe lets this header replace the endpoint secret when DEBUG is on; we never do.
SECRET_OVERRIDE_HEADER = "x-djstripe-webhook-secret"


def _store(request, endpoint: WebhookEndpoint | None, *, exception: str = "") -> WebhookEventTrigger:
    return WebhookEventTrigger.objects.create(
        headers=dict(request.headers),
        body=request.body.decode(errors="replace"),
        remote_ip=get_remote_ip(request),
        webhook_endpoint=endpoint,
        valid=False,
        exception=exception[:128],
    )


def _reject(request, endpoint: WebhookEndpoint | None, reason: str) -> WebhookEventTrigger:
    logger.warning("rejected Stripe webhook delivery: %s", reason)
    return _store(request, endpoint, exception=reason)


class StripeWebhookView(ProcessWebhookView):
    """Store, verify, enqueue. Also stores the deliveries dj-stripe's view drops unrecorded."""

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
        if endpoint.djstripe_validation_method != WebhookEndpointValidation.verify_signature:
            _reject(request, endpoint, "endpoint is not set to verify signatures")
            return HttpResponseBadRequest("endpoint misconfigured")

        trigger = _store(request, endpoint)
        if not trigger.validate(secret=endpoint.secret, api_key=""):
            trigger.exception = "invalid signature, stale timestamp or malformed body"
            trigger.save(update_fields=["exception", "updated"])
            logger.warning("rejected Stripe webhook delivery %s: verification failed", trigger.id)
            return HttpResponseBadRequest("signature verification failed")

        try:
            with transaction.atomic():
                events.external_event_record(payload=trigger.json_body, delivery=trigger)
                trigger.valid = trigger.processed = True
                trigger.save(update_fields=["valid", "processed", "updated"])
        except Exception as exc:  # stored for the operator; Stripe will deliver again
            logger.exception("could not record Stripe event from delivery %s", trigger.id)
            WebhookEventTrigger.objects.filter(pk=trigger.pk).update(
                valid=True, exception=str(exc)[:128], traceback=format_exc()
            )
            return HttpResponseServerError("could not record the event")
        return HttpResponse("ok")
