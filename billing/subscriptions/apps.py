from django.apps import AppConfig


class SubscriptionsConfig(AppConfig):
    name = "billing.subscriptions"
    label = "subscriptions"
    verbose_name = "Subscriptions"
