from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "billing.orders"
    label = "orders"
    verbose_name = "Orders"

    def ready(self) -> None:
        from billing.orders import timeline  # noqa: F401  (registers its backoffice timeline sources)
