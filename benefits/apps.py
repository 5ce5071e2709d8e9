from django.apps import AppConfig


class BenefitsConfig(AppConfig):
    name = "benefits"
    label = "benefits"
    verbose_name = "Benefits"

    def ready(self) -> None:
        from benefits import consumers, events, timeline  # noqa: F401  (timeline sources)
        from benefits.strategies import custom, feature_flag, meter_credit  # noqa: F401  (they register)

        events.register()
        consumers.register()
        _demo_seeder()


def _demo_seeder() -> None:
    """The demo (core, below benefits) seeds benefits through its list of seeders."""
    from benefits.demo import seed_benefits
    from core import demo

    if seed_benefits not in demo.SEEDERS:
        demo.SEEDERS.append(seed_benefits)
