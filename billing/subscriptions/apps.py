from django.apps import AppConfig


class SubscriptionsConfig(AppConfig):
    name = "billing.subscriptions"
    label = "subscriptions"
    verbose_name = "Subscriptions"

    def ready(self) -> None:
        from billing.payments.services import (
            CUSTOMER_PAYMENT_METHOD_HOOKS,
            PAYMENT_HOOKS,
            PAYMENT_LOCK_HOOKS,
            PaymentHooks,
        )
        from billing.subscriptions import dunning, locks

        PAYMENT_HOOKS["order"] = PaymentHooks(
            on_succeeded=dunning.order_payment_succeeded,
            on_failed=dunning.order_payment_failed,
            on_held=dunning.order_payment_held,
        )
        PAYMENT_LOCK_HOOKS["order"] = locks.order_payment_lock
        CUSTOMER_PAYMENT_METHOD_HOOKS.append(dunning.customer_payment_method_updated)

        from billing.subscriptions import events

        events.register()
