from django.apps import AppConfig


class DisputesConfig(AppConfig):
    name = "billing.disputes"
    label = "disputes"
    verbose_name = "Disputes"

    def ready(self) -> None:
        # Registers the charge.dispute.* receivers over the payments app's "deferred" placeholders.
        from billing.disputes import events, receivers  # noqa: F401

        events.register()
