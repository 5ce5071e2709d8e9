from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "billing.orders"
    label = "orders"
    verbose_name = "Orders"

    def ready(self) -> None:
        from billing.orders import collection, events, locks, timeline  # noqa: F401  (timeline sources)
        from billing.payments.services import (
            CUSTOMER_PAYMENT_METHOD_HOOKS,
            PAYMENT_HOOKS,
            PAYMENT_LOCK_HOOKS,
            PaymentHooks,
        )

        events.register()
        # Synchronous: a payment's outcome settles its order in the payment's transaction.
        PAYMENT_HOOKS["order"] = PaymentHooks(
            on_succeeded=collection.order_payment_succeeded,
            on_failed=collection.order_payment_failed,
            on_held=collection.order_payment_held,
        )
        PAYMENT_LOCK_HOOKS["order"] = locks.order_payment_lock
        CUSTOMER_PAYMENT_METHOD_HOOKS.append(collection.orders_retry_for_customer)
