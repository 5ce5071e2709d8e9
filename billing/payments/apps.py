from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "billing.payments"
    label = "payments"
    verbose_name = "Payments"

    def ready(self) -> None:
        from billing.payments import timeline  # noqa: F401  (registers its backoffice timeline sources)
