from django.apps import AppConfig


class RefundsConfig(AppConfig):
    name = "billing.refunds"
    label = "refunds"
    verbose_name = "Refunds"

    def ready(self) -> None:
        from billing.refunds import events, receivers, timeline  # noqa: F401  (receivers, timeline sources)

        events.register()
