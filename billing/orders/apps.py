from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "billing.orders"
    label = "orders"
    verbose_name = "Orders"
