from django.apps import AppConfig


class SubscriptionsConfig(AppConfig):
    name = "billing.subscriptions"
    label = "subscriptions"
    verbose_name = "Subscriptions"

    def ready(self) -> None:
        from billing.subscriptions import consumers, events, timeline  # noqa: F401  (timeline sources)
        from core.events.registry import register_consumer

        events.register()
        # What a subscription learns from its orders (paid, a failed payment, dunning gave up).
        register_consumer(
            "subscriptions.order_events",
            types=consumers.ORDER_TYPES,
            handle=consumers.subscription_on_order_event,
        )
