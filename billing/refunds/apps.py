from django.apps import AppConfig


class RefundsConfig(AppConfig):
    name = "billing.refunds"
    label = "refunds"
    verbose_name = "Refunds"
