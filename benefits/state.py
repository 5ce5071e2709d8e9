"""A customer's state: what an integrator's app reads to decide what the customer may use.

One read of the rows as they are: the customer, the subscriptions that give access now, and
the grants that are granted and still wanted, each with what its strategy shows the customer.
Three queries whatever the number of grants (plus what a strategy's
``prepare_customer_views`` loads once for all grants of its type), so the call stays cheap
enough to make on every page view of the merchant's app.

Which subscriptions count: the benefits' holding rule (``benefits.selectors``): active or
trialing, or past due, unpaid or canceled while ``benefits_revoke_at`` (the grace period, or
the end of a period a cancellation left to run) is still ahead.

Which grants count: ``status`` granted (the strategy did its work: the key exists, the
invitation was sent) and ``wanted`` granted (no revocation asked for, even one still being
carried out), of a benefit that is not deleted. Pending and revoked grants are left out.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from accounts.models import Customer, Organization
from benefits.models import BenefitGrant
from benefits.selectors import holding_subscriptions
from benefits.strategies import BenefitStrategy, strategy_for
from billing.subscriptions.models import Subscription
from core import clock

CUSTOMER_FIELDS = ("id", "organization_id", "external_id", "email", "name", "metadata")
SUBSCRIPTION_FIELDS = (
    "id", "customer_id", "status", "currency", "amount", "seats", "current_period_start",
    "current_period_end", "trial_end", "cancel_at_period_end", "benefits_revoke_at", "created_at",
    "product__id", "product__name", "product__recurring_interval", "product__recurring_interval_count",
    "price_id",
)  # fmt: skip
GRANT_FIELDS = (
    "id", "customer_id", "subscription_id", "order_id", "properties", "granted_at", "created_at",
    "benefit__id", "benefit__type", "benefit__description", "benefit__properties", "benefit__metadata",
)  # fmt: skip

# Types whose strategy is not installed (an app removed) still show, with the grant's properties.
_FALLBACK = BenefitStrategy()


@dataclass(frozen=True)
class GrantedBenefit:
    grant: BenefitGrant
    properties: dict[str, Any]


@dataclass(frozen=True)
class CustomerState:
    customer: Customer
    subscriptions: list[Subscription]
    benefits: list[GrantedBenefit]
    meters: list[dict] = field(default_factory=list)  # metering does not exist yet


def state_customer(*, organization: Organization, pk=None, external_id: str | None = None) -> Customer | None:
    """The organization's customer by id or by external id (None when it has none such)."""
    customers = Customer.objects.filter(organization=organization).only(*CUSTOMER_FIELDS)
    if external_id is not None:
        return customers.filter(external_id=external_id).first()
    return customers.filter(pk=pk).first()


def customer_state(*, customer: Customer, now: datetime | None = None) -> CustomerState:
    now = now or clock.now()
    subscriptions = list(
        holding_subscriptions(now=now)
        .filter(customer_id=customer.pk)
        .select_related("product")
        .only(*SUBSCRIPTION_FIELDS)
        .order_by("-created_at", "-id")
    )
    grants = list(
        BenefitGrant.objects.filter(
            customer_id=customer.pk,
            status=BenefitGrant.Status.GRANTED,
            wanted=BenefitGrant.Wanted.GRANTED,
            benefit__deleted_at__isnull=True,
        )
        .select_related("benefit")
        .only(*GRANT_FIELDS)
        .order_by("granted_at", "id")
    )
    for subscription in subscriptions:
        subscription.access_ends_at = access_ends_at(subscription)
    return CustomerState(customer=customer, subscriptions=subscriptions, benefits=granted_benefits(grants))


def access_ends_at(subscription: Subscription) -> datetime | None:
    """When access ends unless something changes: the grace period's or the paid period's end
    (``benefits_revoke_at``), or the period's end when a cancellation waits for it; None while
    the subscription renews."""
    if subscription.benefits_revoke_at is not None:
        return subscription.benefits_revoke_at
    return subscription.current_period_end if subscription.cancel_at_period_end else None


def _strategy(type_name: str) -> BenefitStrategy:
    try:
        return strategy_for(type_name)
    except LookupError:
        return _FALLBACK


def granted_benefits(grants: list[BenefitGrant]) -> list[GrantedBenefit]:
    """Each grant with its strategy's customer view; every strategy first gets all its grants
    at once (``prepare_customer_views``) to load what its views need in one query, not one
    per grant."""
    by_type: dict[str, list[BenefitGrant]] = defaultdict(list)
    for grant in grants:
        by_type[grant.benefit.type].append(grant)
    for type_name, of_type in by_type.items():
        _strategy(type_name).prepare_customer_views(of_type)
    return [
        GrantedBenefit(
            grant=grant,
            properties=_strategy(grant.benefit.type).customer_view(grant=grant, benefit=grant.benefit),
        )
        for grant in grants
    ]
