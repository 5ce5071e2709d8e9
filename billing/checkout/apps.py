from django.apps import AppConfig


class CheckoutConfig(AppConfig):
    name = "billing.checkout"
    label = "checkout"
    verbose_name = "Checkout"
