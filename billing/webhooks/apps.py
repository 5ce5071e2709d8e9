from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "billing.webhooks"
    label = "webhooks"
    verbose_name = "Webhooks"
