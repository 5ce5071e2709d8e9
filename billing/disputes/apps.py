from django.apps import AppConfig


class DisputesConfig(AppConfig):
    name = "billing.disputes"
    label = "disputes"
    verbose_name = "Disputes"
