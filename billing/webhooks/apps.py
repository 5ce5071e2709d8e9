from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "billing.webhooks"
    label = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        from billing.webhooks.api import WebhookEndpointSerializer
        from billing.webhooks.delivery import webhook_deliveries_create, webhook_deliveries_create_many
        from billing.webhooks.models import WebhookEndpoint
        from core.events.registry import ANY, register_consumer, register_object

        register_object(
            "webhook_endpoint",
            model=WebhookEndpoint,
            serializer=WebhookEndpointSerializer,
            events={
                "test": "Sent on request (POST /v1/webhook-endpoints/{id}/test), to that endpoint only.",
                "disabled": "An endpoint was disabled: by you, an operator, or automatically after "
                "24 hours of failed deliveries (disabled_reason says which).",
            },
        )
        register_consumer(
            "webhooks",
            types=[ANY],
            handle=lambda event: webhook_deliveries_create(event=event),
            handle_many=lambda events: webhook_deliveries_create_many(events=events),
        )
