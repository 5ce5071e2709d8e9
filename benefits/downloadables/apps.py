from django.apps import AppConfig


class DownloadablesConfig(AppConfig):
    name = "benefits.downloadables"
    label = "downloadables"
    verbose_name = "Downloadables"

    def ready(self) -> None:
        from benefits.downloadables import strategy  # noqa: F401  (registers the benefit type)
