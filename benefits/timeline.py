"""The benefits part of the customer's backoffice timeline (core.backoffice.timeline): each
grant granted, revoked or failing, with the reason; one query whatever the history."""

from benefits.models import BenefitGrant
from benefits.strategies import REGISTRY
from core.backoffice.timeline import TimelineEvent, admin_change_url, timelines


@timelines.source("accounts.customer", kind="benefit", permission="benefits.view_benefitgrant", rank=1)
def customer_grants(customer, limit: int, now) -> list[TimelineEvent]:
    events = []
    grants = BenefitGrant.objects.filter(customer=customer).select_related("benefit").order_by("-updated_at")
    for grant in grants[:limit]:
        url = admin_change_url("benefits", "benefitgrant", grant.pk)
        name = grant.benefit.description
        strategy = REGISTRY.strategies.get(grant.benefit.type)
        kind = strategy.label if strategy is not None else grant.benefit.type
        if grant.granted_at is not None:
            events.append(TimelineEvent(grant.granted_at, "benefit", f"Granted {name}", kind, url, "good"))
        if grant.status == BenefitGrant.Status.REVOKED and grant.revoked_at is not None:
            by = "operator" if grant.revoked_by_operator else "system"
            detail = f"{grant.revoke_reason or 'revoked'} · by {by}"
            events.append(TimelineEvent(grant.revoked_at, "benefit", f"Revoked {name}", detail, url, "muted"))
        if grant.error and grant.errored_at is not None:
            events.append(
                TimelineEvent(grant.errored_at, "benefit", f"{name}: failed", grant.error[:200], url, "bad")
            )
    return events
