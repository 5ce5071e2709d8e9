"""Backoffice: a dashboard card saying whether GitHub repository access is configured (the
benefit pages show the same through the strategy's ``is_configured()``), and how many GitHub
grants are failing."""

from django.conf import settings
from django.urls import NoReverseMatch, reverse

from benefits.github.strategy import TYPE, GitHubRepositoryStrategy
from benefits.models import BenefitGrant
from core.backoffice.dashboard import CardItem, Metric, dashboard


def _grants_url() -> str | None:
    try:
        return reverse("admin:benefits_benefitgrant_changelist")
    except NoReverseMatch:  # the grants list is not registered in this build
        return None


@dashboard.card(
    "github_access", title="GitHub repository access", order=90, permission="benefits.view_benefit"
)
def github_card(request) -> Metric:
    ready, why = GitHubRepositoryStrategy().is_configured()
    if not ready:
        return Metric("GitHub: not configured", hint=why, tone="warn")
    failing = (
        BenefitGrant.objects.filter(benefit__type=TYPE, errored_at__isnull=False)
        .exclude(error="")
        .order_by("-errored_at")
    )
    count = failing.count()
    items = tuple(CardItem(grant.error[:120]) for grant in failing[:3])
    hint = f"{settings.RECUR_GITHUB_API_URL}; {count} grant{'s' if count != 1 else ''} failing"
    return Metric("Configured", hint=hint, tone="bad" if count else "good", url=_grants_url(), items=items)
