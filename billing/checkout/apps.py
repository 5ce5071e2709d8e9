from django.apps import AppConfig


class CheckoutConfig(AppConfig):
    name = "billing.checkout"
    label = "checkout"
    verbose_name = "Checkout"

    def ready(self) -> None:
        from billing.checkout import (
            services,
            timeline,  # noqa: F401  (registers its backoffice timeline sources)
        )
        from billing.payments.services import PAYMENT_HOOKS, PAYMENT_LOCK_HOOKS, PaymentHooks

        PAYMENT_HOOKS["checkout"] = PaymentHooks(
            on_succeeded=services.checkout_payment_succeeded, on_failed=services.checkout_payment_failed
        )
        PAYMENT_LOCK_HOOKS["checkout"] = services.checkout_payment_lock

        from billing.checkout import events

        events.register()
