"""A trivial stand-in for the delivery engine, for testing the benchmark harness alone: the
workers import it (``--worker-include``) and it registers a ``webhooks`` consumer only when
the real one is absent. It posts each delivery after commit, one at a time."""

import json
from datetime import UTC, datetime

import requests
from django.db import transaction
from standardwebhooks import Webhook

from billing.webhooks.models import WebhookDelivery, WebhookEndpoint
from core import clock
from core.events import registry
from core.events.services import event_envelope


def _send(delivery_ids: list[int]) -> None:
    for delivery in WebhookDelivery.objects.filter(pk__in=delivery_ids).select_related("event", "endpoint"):
        body = json.dumps(event_envelope(delivery.event))
        msg_id = f"msg_{delivery.event.uuid.hex}"
        stamp = datetime.now(UTC)
        headers = {
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(stamp.timestamp())),
            "webhook-signature": Webhook(delivery.endpoint.secret).sign(msg_id, stamp, body),
        }
        response = requests.post(delivery.endpoint.url, data=body, headers=headers, timeout=10)
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=WebhookDelivery.Status.DELIVERED,
            attempts=1,
            last_status_code=response.status_code,
            delivered_at=clock.now(),
        )


def handle(event) -> None:
    endpoints = [
        e
        for e in WebhookEndpoint.objects.filter(organization_id=event.organization_id, enabled=True)
        if registry.ANY in e.event_types or event.type in e.event_types
    ]
    deliveries = WebhookDelivery.objects.bulk_create(
        WebhookDelivery(
            organization_id=event.organization_id,
            endpoint=e,
            event=event,
            object_key=f"{event.object_type}:{event.object_id}",
        )
        for e in endpoints
    )
    ids = [d.pk for d in deliveries]
    transaction.on_commit(lambda: _send(ids))


if "webhooks" not in registry.REGISTRY.consumers:
    registry.register_consumer("webhooks", types=[registry.ANY], handle=handle)
