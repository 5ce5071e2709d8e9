from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "billing.catalog"
    label = "catalog"
    verbose_name = "Catalog"

    def ready(self) -> None:
        from billing.catalog import events

        events.register()
