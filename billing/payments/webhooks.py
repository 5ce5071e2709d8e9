"""Stripe webhooks in, through dj-stripe's models.

Every delivery is stored as a dj-stripe ``WebhookEventTrigger`` and verified by
dj-stripe (signature, the endpoint's 300 s tolerance). dj-stripe's own processing
would mirror Stripe objects by calling the Stripe API inside the request; instead a
verified event becomes an ``ExternalEvent`` (unique by event id) whose processing is
enqueued after commit. Nothing here needs the network.

A delivery that can never become an event (not a JSON object, a NUL, too deep, too big,
a malformed id, type or ``created``) is stored as rejected, logged, and answered 4xx, so
it never turns into a 500 that Stripe would deliver again and again.
"""

import logging
from traceback import format_exc

from django.core.exceptions import RequestDataTooBig
from django.db import transaction
from django.http import HttpResponse, HttpResponseBadRequest, HttpResponseNotFound, HttpResponseServerError
from djstripe.enums import WebhookEndpointValidation
from djstripe.models import WebhookEndpoint, WebhookEventTrigger
from djstripe.models.webhooks import get_remote_ip
from djstripe.views import ProcessWebhookView

from billing.payments import events
from core.errors import InvalidInput
from core.json_input import JsonInputError, json_loads_bounded

logger = logging.getLogger("recur.webhooks")

# dj-stripe lets this header replace the endpoint secret when DEBUG is on; we never do.
SECRET_OVERRIDE_HEADER = "x-djstripe-webhook-secret"


def _storable(text: str) -> str:
    return text.replace("\x00", "\ufffd")  # PostgreSQL text and jsonb hold no NUL


def _raw_body(request) -> bytes | None:
    try:
        return request.body
    except RequestDataTooBig:
        return None


def _store(request, endpoint: WebhookEndpoint | None, *, exception: str = "", valid: bool = False):
    body = _raw_body(request)
    return WebhookEventTrigger.objects.create(
        headers={_storable(k): _storable(v) for k, v in request.headers.items()},
        body="" if body is None else _storable(body.decode(errors="replace")),
        remote_ip=get_remote_ip(request),
        webhook_endpoint=endpoint,
        valid=valid,
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
        body = _raw_body(request)
        if body is None:
            _reject(request, endpoint, "body over the upload size limit")
            return HttpResponse("body too large", status=413)
        if b"\x00" in body:
            _reject(request, endpoint, "body contains a NUL byte")
            return HttpResponseBadRequest("body contains a NUL byte")
        try:
            payload = json_loads_bounded(body)
        except JsonInputError as exc:
            _reject(request, endpoint, f"body is not usable JSON: {exc.code}")
            return HttpResponseBadRequest("body is not usable JSON")
        if not isinstance(payload, dict):
            _reject(request, endpoint, "body is not a JSON object")
            return HttpResponseBadRequest("body is not a JSON object")

        trigger = _store(request, endpoint)
        if not trigger.validate(secret=endpoint.secret, api_key=""):
            trigger.exception = "invalid signature, stale timestamp or malformed body"
            trigger.save(update_fields=["exception", "updated"])
            logger.warning("rejected Stripe webhook delivery %s: verification failed", trigger.id)
            return HttpResponseBadRequest("signature verification failed")
        problem = events.event_payload_problem(payload)
        if problem:  # authentic but unusable: kept for the operator, refused for good
            logger.warning("rejected Stripe webhook delivery %s: malformed event: %s", trigger.id, problem)
            trigger.valid = True
            trigger.exception = f"malformed event: {problem}"[:128]
            trigger.save(update_fields=["valid", "exception", "updated"])
            return HttpResponseBadRequest("malformed event")

        try:
            with transaction.atomic():
                events.external_event_record(payload=payload, delivery=trigger)
                trigger.valid = trigger.processed = True
                trigger.save(update_fields=["valid", "processed", "updated"])
        except InvalidInput as exc:  # the same rules, checked again by the service
            logger.warning("rejected Stripe webhook delivery %s: %s", trigger.id, exc.detail)
            WebhookEventTrigger.objects.filter(pk=trigger.pk).update(valid=True, exception=exc.detail[:128])
            return HttpResponseBadRequest("malformed event")
        except Exception as exc:  # stored for the operator; Stripe will deliver again
            logger.exception("could not record Stripe event from delivery %s", trigger.id)
            WebhookEventTrigger.objects.filter(pk=trigger.pk).update(
                valid=True, exception=str(exc)[:128], traceback=format_exc()
            )
            return HttpResponseServerError("could not record the event")
        return HttpResponse("ok")
