from django.apps import AppConfig


class RefundsConfig(AppConfig):
    name = "billing.refunds"
    label = "refunds"
    verbose_name = "Refunds"

    def ready(self) -> None:
        from billing.refunds import events, receivers  # noqa: F401  (registers the refund.* receivers)

        events.register()
