"""Interim endpoint services the backoffice pages call; the delivery engine's services replace
this module (same names and signatures)."""

import base64
import secrets
from datetime import timedelta

from django.db import transaction

from billing.webhooks.models import URL_MAX, WebhookDelivery, WebhookEndpoint
from core import clock
from core.audit import audit_record
from core.errors import InvalidInput
from core.events.registry import ANY, REGISTRY

ROTATION_OVERLAP = timedelta(hours=24)
EDITABLE = ("url", "event_types", "description")


def _new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def _check_url(url: str) -> None:
    if len(url) > URL_MAX:
        raise InvalidInput(f"At most {URL_MAX} characters.", field="url", code="too_long")
    if not url.startswith(("https://", "http://")):
        raise InvalidInput("Only http(s) URLs can receive webhooks.", field="url", code="invalid_url")


def _check_types(types: list[str]) -> None:
    unknown = [t for t in types if t != ANY and t not in REGISTRY.types]
    if unknown or not types:
        raise InvalidInput(
            f"Unknown event types: {', '.join(unknown)}." if unknown else "Choose at least one event type.",
            field="event_types",
            code="unknown_event_type",
        )


def _lock(endpoint: WebhookEndpoint) -> WebhookEndpoint:
    return WebhookEndpoint.objects.select_for_update(no_key=True).get(pk=endpoint.pk)


@transaction.atomic
def webhook_endpoint_create(*, organization, url, event_types, description="", actor=None):
    _check_url(url)
    _check_types(event_types)
    secret = _new_secret()
    endpoint = WebhookEndpoint.objects.create(
        organization=organization, url=url, event_types=event_types, description=description, secret=secret
    )
    audit_record(actor=actor, action="webhook_endpoint.create", target=endpoint, organization=organization)
    return endpoint, secret


@transaction.atomic
def webhook_endpoint_update(*, endpoint, actor=None, **fields) -> WebhookEndpoint:
    endpoint = _lock(endpoint)
    if "url" in fields:
        _check_url(fields["url"])
    if "event_types" in fields:
        _check_types(fields["event_types"])
    for name in EDITABLE:
        if name in fields:
            setattr(endpoint, name, fields[name])
    endpoint.save()
    audit_record(
        actor=actor,
        action="webhook_endpoint.update",
        target=endpoint,
        organization=endpoint.organization,
        data={k: v for k, v in fields.items() if k in EDITABLE},
    )
    return endpoint


@transaction.atomic
def webhook_endpoint_rotate_secret(*, endpoint, actor=None) -> str:
    endpoint = _lock(endpoint)
    secret = _new_secret()
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = clock.now() + ROTATION_OVERLAP
    endpoint.secret = secret
    endpoint.save()
    audit_record(
        actor=actor,
        action="webhook_endpoint.rotate_secret",
        target=endpoint,
        organization=endpoint.organization,
    )
    return secret


def webhook_endpoint_send_test(*, endpoint, actor=None):
    raise InvalidInput("Test events arrive with the delivery engine.", code="not_available")


@transaction.atomic
def webhook_endpoint_disable(*, endpoint, reason, actor=None) -> WebhookEndpoint:
    endpoint = _lock(endpoint)
    endpoint.enabled = False
    endpoint.disabled_at = clock.now()
    endpoint.disabled_reason = reason[:200]
    endpoint.save()
    audit_record(
        actor=actor,
        action="webhook_endpoint.disable",
        target=endpoint,
        organization=endpoint.organization,
        reason=reason,
    )
    return endpoint


@transaction.atomic
def webhook_endpoint_enable(*, endpoint, actor=None) -> WebhookEndpoint:
    endpoint = _lock(endpoint)
    endpoint.enabled = True
    endpoint.disabled_at = None
    endpoint.disabled_reason = ""
    endpoint.failing_since = None
    endpoint.save()
    audit_record(
        actor=actor, action="webhook_endpoint.enable", target=endpoint, organization=endpoint.organization
    )
    return endpoint


REDELIVERABLE = (
    WebhookDelivery.Status.FAILED,
    WebhookDelivery.Status.ABANDONED,
    WebhookDelivery.Status.DELIVERED,
)


@transaction.atomic
def webhook_delivery_redeliver(*, delivery, actor=None) -> WebhookDelivery:
    delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery.pk)
    if delivery.status not in REDELIVERABLE:
        raise InvalidInput("This delivery is still being sent.", code="in_flight")
    delivery.status = WebhookDelivery.Status.PENDING
    delivery.next_attempt_at = clock.now()
    delivery.save(update_fields=["status", "next_attempt_at"])
    audit_record(
        actor=actor, action="webhook_delivery.redeliver", target=delivery, organization=delivery.organization
    )
    return delivery


@transaction.atomic
def webhook_endpoint_redeliver_failed(*, endpoint, actor=None) -> int:
    endpoint = _lock(endpoint)
    count = WebhookDelivery.objects.filter(
        endpoint=endpoint, status__in=[WebhookDelivery.Status.FAILED, WebhookDelivery.Status.ABANDONED]
    ).update(status=WebhookDelivery.Status.PENDING, next_attempt_at=clock.now())
    audit_record(
        actor=actor,
        action="webhook_endpoint.redeliver_failed",
        target=endpoint,
        organization=endpoint.organization,
        data={"deliveries": count},
    )
    return count
