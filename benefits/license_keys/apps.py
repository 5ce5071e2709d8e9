from django.apps import AppConfig


class LicenseKeysConfig(AppConfig):
    name = "benefits.license_keys"
    label = "license_keys"
    verbose_name = "License keys"

    def ready(self) -> None:
        from benefits.license_keys import strategy  # noqa: F401  (registers the benefit type)
