"""Webhook endpoints and deliveries: every change merchants (API) and operators (backoffice) make.

Secrets are returned once, by create and rotate, and never written to the audit log or logs.
Operators' changes (``actor`` given) are audited; the automatic disabling is audited too.
"""

from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from django.db import transaction

from billing.webhooks.addresses import URL_MAX, url_problem
from billing.webhooks.delivery import TEST_EVENT, send_prompt
from billing.webhooks.models import WebhookDelivery, WebhookEndpoint
from billing.webhooks.signing import secret_generate
from core import clock
from core.audit import audit_record, json_safe
from core.errors import InvalidInput
from core.events import registry
from core.events.models import Event
from core.events.registry import ANY
from core.events.services import event_record
from core.locks import lock_one

ROTATION_OVERLAP = timedelta(hours=24)
FAILING_FOR = timedelta(hours=24)
DESCRIPTION_MAX = 500
EVENT_TYPES_MAX = 100
AUTO_DISABLED_REASON = "Every delivery failed for 24 hours."
EDITABLE = ("url", "event_types", "description", "enabled")


def _audit(actor, action: str, endpoint: WebhookEndpoint, data: dict | None = None, reason: str = "") -> None:
    audit_record(
        actor=actor,
        action=action,
        target=endpoint,
        organization=endpoint.organization,
        reason=reason,
        data=json_safe(data or {}),
    )


def _clean_url(url: Any) -> str:
    if not isinstance(url, str) or not url.strip():
        raise InvalidInput("A URL is required.", field="url", code="required")
    url = url.strip()
    if len(url) > URL_MAX:
        raise InvalidInput(f"At most {URL_MAX} characters.", field="url", code="max_length")
    problem = url_problem(url)
    if problem:
        raise InvalidInput(problem, field="url", code="url_refused")
    return url


def _clean_event_types(event_types: Any) -> list[str]:
    if not isinstance(event_types, list | tuple) or not event_types:
        raise InvalidInput(
            'Name at least one event type, or ["*"] for all.', field="event_types", code="required"
        )
    if len(event_types) > EVENT_TYPES_MAX:
        raise InvalidInput(f"At most {EVENT_TYPES_MAX} event types.", field="event_types", code="max_length")
    unknown = [
        t for t in event_types if not isinstance(t, str) or (t != ANY and t not in registry.REGISTRY.types)
    ]
    if unknown:
        raise InvalidInput(
            f"Unknown event type: {str(unknown[0])[:100]}. See the event catalogue.",
            field="event_types",
            code="unknown_event_type",
        )
    return sorted(set(event_types))


def _clean_description(description: Any) -> str:
    if not isinstance(description, str):
        raise InvalidInput("The description is text.", field="description", code="invalid")
    if len(description) > DESCRIPTION_MAX:
        raise InvalidInput(f"At most {DESCRIPTION_MAX} characters.", field="description", code="max_length")
    return description


def event_types_available() -> list[str]:
    return sorted(registry.REGISTRY.types)


@transaction.atomic
def webhook_endpoint_create(
    *,
    organization,
    url: str,
    event_types: Sequence[str],
    description: str = "",
    enabled: bool = True,
    actor=None,
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its signing secret (``whsec_...``), which is shown only now."""
    secret = secret_generate()
    endpoint = WebhookEndpoint.objects.create(
        organization=organization,
        url=_clean_url(url),
        event_types=_clean_event_types(event_types),
        description=_clean_description(description),
        enabled=bool(enabled),
        secret=secret,
        disabled_at=None if enabled else clock.now(),
    )
    if actor is not None:
        _audit(
            actor,
            "webhook_endpoint.create",
            endpoint,
            {"url": endpoint.url, "event_types": endpoint.event_types},
        )
    return endpoint, secret


@transaction.atomic
def webhook_endpoint_update(*, endpoint: WebhookEndpoint, actor=None, **fields: Any) -> WebhookEndpoint:
    """Change the URL, event types, description or enabled flag (unknown fields are refused)."""
    unknown = set(fields) - set(EDITABLE)
    if unknown:
        name = sorted(unknown)[0]
        raise InvalidInput("This field cannot be changed.", field=name, code="not_editable")
    endpoint = lock_one(WebhookEndpoint.objects.all(), pk=endpoint.pk)
    changes = {}
    if "url" in fields:
        changes["url"] = _clean_url(fields["url"])
    if "event_types" in fields:
        changes["event_types"] = _clean_event_types(fields["event_types"])
    if "description" in fields:
        changes["description"] = _clean_description(fields["description"])
    for name, value in changes.items():
        setattr(endpoint, name, value)
    endpoint.save()
    if actor is not None and changes:
        _audit(actor, "webhook_endpoint.update", endpoint, changes)
    if "enabled" in fields and bool(fields["enabled"]) != endpoint.enabled:
        if fields["enabled"]:
            endpoint = webhook_endpoint_enable(endpoint=endpoint, actor=actor)
        else:
            endpoint = webhook_endpoint_disable(
                endpoint=endpoint, reason="Disabled by the merchant.", actor=actor
            )
    return endpoint


@transaction.atomic
def webhook_endpoint_delete(*, endpoint: WebhookEndpoint, actor=None) -> None:
    endpoint = lock_one(WebhookEndpoint.objects.all(), pk=endpoint.pk)
    if actor is not None:
        _audit(actor, "webhook_endpoint.delete", endpoint, {"url": endpoint.url})
    endpoint.delete()


@transaction.atomic
def webhook_endpoint_rotate_secret(*, endpoint: WebhookEndpoint, actor=None) -> str:
    """A new secret, returned once; the current one keeps signing beside it for 24 hours (a
    rotation during an overlap ends the older overlap)."""
    endpoint = lock_one(WebhookEndpoint.objects.all(), pk=endpoint.pk)
    secret = secret_generate()
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = clock.now() + ROTATION_OVERLAP
    endpoint.secret = secret
    endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at", "updated_at"])
    if actor is not None:
        _audit(
            actor,
            "webhook_endpoint.rotate_secret",
            endpoint,
            {"previous_secret_expires_at": endpoint.previous_secret_expires_at},
        )
    return secret


@transaction.atomic
def webhook_endpoint_send_test(*, endpoint: WebhookEndpoint, actor=None) -> Event:
    """A ``webhook_endpoint.test`` event, delivered to this endpoint alone through the usual path."""
    endpoint = lock_one(WebhookEndpoint.objects.all(), pk=endpoint.pk)
    if not endpoint.enabled:
        raise InvalidInput("Enable the endpoint to send it a test event.", field="enabled", code="disabled")
    if actor is not None:
        _audit(actor, "webhook_endpoint.send_test", endpoint)
    return event_record(type=TEST_EVENT, obj=endpoint)


@transaction.atomic
def webhook_endpoint_disable(*, endpoint: WebhookEndpoint, reason: str, actor=None) -> WebhookEndpoint:
    """Stop sending (open deliveries wait, new events are not queued for it); audited, and a
    ``webhook_endpoint.disabled`` event says so."""
    endpoint = lock_one(WebhookEndpoint.objects.all(), pk=endpoint.pk)
    if not endpoint.enabled:
        return endpoint
    endpoint.enabled = False
    endpoint.disabled_at = clock.now()
    endpoint.disabled_reason = (reason or "Disabled.")[:200]
    endpoint.save(update_fields=["enabled", "disabled_at", "disabled_reason", "updated_at"])
    _audit(
        actor, "webhook_endpoint.disable", endpoint, {"url": endpoint.url}, reason=endpoint.disabled_reason
    )
    event_record(type="webhook_endpoint.disabled", obj=endpoint)
    return endpoint


@transaction.atomic
def webhook_endpoint_enable(*, endpoint: WebhookEndpoint, actor=None) -> WebhookEndpoint:
    """Send again: deliveries still open resume, the failure streak starts over."""
    endpoint = lock_one(WebhookEndpoint.objects.all(), pk=endpoint.pk)
    if endpoint.enabled:
        return endpoint
    endpoint.enabled = True
    endpoint.disabled_at = None
    endpoint.disabled_reason = ""
    endpoint.failing_since = None
    endpoint.save(update_fields=["enabled", "disabled_at", "disabled_reason", "failing_since", "updated_at"])
    if actor is not None:
        _audit(actor, "webhook_endpoint.enable", endpoint)
    _send_after_commit()
    return endpoint


def webhook_endpoints_disable_failing(*, endpoint_ids: Iterable | None = None) -> int:
    """Disable every enabled endpoint whose deliveries have all failed for 24 hours."""
    endpoints = WebhookEndpoint.objects.filter(enabled=True, failing_since__lte=clock.now() - FAILING_FOR)
    if endpoint_ids is not None:
        endpoints = endpoints.filter(pk__in=list(endpoint_ids))
    return sum(_disable_if_failing(endpoint_id=pk) for pk in endpoints.values_list("pk", flat=True))


@transaction.atomic
def _disable_if_failing(*, endpoint_id) -> bool:
    endpoint = lock_one(WebhookEndpoint.objects.all(), pk=endpoint_id)
    still_failing = endpoint is not None and endpoint.failing_since is not None
    if not (still_failing and endpoint.enabled and endpoint.failing_since <= clock.now() - FAILING_FOR):
        return False  # a success cleared the streak meanwhile
    webhook_endpoint_disable(endpoint=endpoint, reason=AUTO_DISABLED_REASON, actor=None)
    return True


def _send_after_commit() -> None:
    transaction.on_commit(send_prompt, robust=True)


@transaction.atomic
def webhook_delivery_redeliver(*, delivery: WebhookDelivery, actor=None) -> WebhookDelivery:
    """Send this delivery again now (delivered or not), with the same ``webhook-id``."""
    delivery = lock_one(WebhookDelivery.objects.select_related("endpoint"), pk=delivery.pk)
    if not delivery.endpoint.enabled:
        raise InvalidInput("Enable the endpoint to redeliver.", field="endpoint", code="disabled")
    delivery.status = WebhookDelivery.Status.PENDING
    delivery.next_attempt_at = clock.now()
    delivery.save(update_fields=["status", "next_attempt_at"])
    if actor is not None:
        audit_record(
            actor=actor,
            action="webhook_delivery.redeliver",
            target=delivery,
            organization=delivery.endpoint.organization,
            data={"endpoint": str(delivery.endpoint_id), "event": delivery.event_id},
        )
    _send_after_commit()
    return delivery


@transaction.atomic
def webhook_endpoint_redeliver_failed(*, endpoint: WebhookEndpoint, actor=None) -> int:
    """Send every failed or abandoned delivery of the endpoint again now; returns how many."""
    endpoint = lock_one(WebhookEndpoint.objects.all(), pk=endpoint.pk)
    if not endpoint.enabled:
        raise InvalidInput("Enable the endpoint to redeliver.", field="enabled", code="disabled")
    count = WebhookDelivery.objects.filter(
        endpoint=endpoint, status__in=[WebhookDelivery.Status.FAILED, WebhookDelivery.Status.ABANDONED]
    ).update(status=WebhookDelivery.Status.PENDING, next_attempt_at=clock.now())
    if actor is not None:
        _audit(actor, "webhook_endpoint.redeliver_failed", endpoint, {"deliveries": count})
    if count:
        _send_after_commit()
    return count
