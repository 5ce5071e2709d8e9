"""Who holds a product's benefits right now, decided from the billing rows as they are.

A subscription holds them while it is active or trialing, and after that (past due, unpaid,
ended) until its ``benefits_revoke_at`` passes (the grace period, or the end of a period a
cancellation left to run); ``subscription.revoked`` is recorded then, and clears it. A
one-time order holds them once paid, unless a refund asked to revoke them or a chargeback
revoked access (and no won dispute restored it)."""

from django.db.models import Exists, OuterRef, Q, QuerySet

from benefits.models import Benefit, BenefitGrant, ProductBenefit
from billing.disputes.models import Dispute
from billing.orders.models import Order
from billing.refunds.models import Refund
from billing.subscriptions.models import Subscription
from core import clock

S = Subscription.Status
W = BenefitGrant.Wanted
HOLDING_STATUSES = (S.ACTIVE, S.TRIALING)
GRACE_STATUSES = (S.PAST_DUE, S.UNPAID, S.CANCELED)


def holding_subscriptions(*, now=None) -> QuerySet[Subscription]:
    now = now or clock.now()
    return Subscription.objects.filter(
        Q(status__in=HOLDING_STATUSES) | Q(status__in=GRACE_STATUSES, benefits_revoke_at__gt=now)
    )


def holding_orders() -> QuerySet[Order]:
    """Paid one-time orders whose access was not taken back."""
    revoked_by_refund = Refund.objects.filter(order=OuterRef("pk"), revoke_benefits=True)
    revoked_by_dispute = Dispute.objects.filter(
        order=OuterRef("pk"), access_revoked_at__isnull=False, access_restored_at__isnull=True
    )
    return Order.objects.filter(
        subscription__isnull=True, product__isnull=False, status__in=Order.PAID_STATUSES
    ).exclude(Exists(revoked_by_refund) | Exists(revoked_by_dispute))


def subscription_holds(subscription: Subscription) -> bool:
    return holding_subscriptions().filter(pk=subscription.pk).exists()


def order_holds(order: Order) -> bool:
    return holding_orders().filter(pk=order.pk).exists()


def subscription_revoke_reason(subscription: Subscription) -> str:
    """Why a subscription no longer holds, from its state (whichever event noticed it)."""
    if subscription.status == S.PAUSED:
        return "subscription paused"
    if subscription.status in (S.PAST_DUE, S.UNPAID):
        return "subscription unpaid after the grace period"
    return "subscription ended"


def order_revoke_reason(order: Order) -> str:
    """Why a one-time order no longer holds, from its refunds and disputes."""
    if Refund.objects.filter(order=order, revoke_benefits=True).exists():
        return "refunded with benefits revoked"
    if Dispute.objects.filter(
        order=order, access_revoked_at__isnull=False, access_restored_at__isnull=True
    ).exists():
        return "payment disputed"
    return "order refunded or voided"


def product_benefit_ids(product_id) -> list:
    """The benefits a product unlocks now (not being removed, not deleted), in its order."""
    return list(
        ProductBenefit.objects.filter(
            product_id=product_id, removed_at__isnull=True, benefit__deleted_at__isnull=True
        ).values_list("benefit_id", flat=True)
    )


def product_benefit_ids_many(product_ids) -> dict:
    """``product_benefit_ids`` for many products in one query: {product id: [benefit ids]}
    (products without live benefits are absent)."""
    found: dict = {}
    rows = ProductBenefit.objects.filter(
        product_id__in=set(product_ids), removed_at__isnull=True, benefit__deleted_at__isnull=True
    ).values_list("product_id", "benefit_id")
    for product_id, benefit_id in rows:
        found.setdefault(product_id, []).append(benefit_id)
    return found


def holding_ids(*, subscription_ids=(), order_ids=()) -> tuple[set, set]:
    """Which of these subscriptions and one-time orders hold now (two queries)."""
    subscriptions, orders = set(), set()
    if subscription_ids:
        subscriptions = set(
            holding_subscriptions().filter(pk__in=set(subscription_ids)).values_list("pk", flat=True)
        )
    if order_ids:
        orders = set(holding_orders().filter(pk__in=set(order_ids)).values_list("pk", flat=True))
    return subscriptions, orders


def scope_grants(*, subscription_ids=(), order_ids=()) -> dict:
    """The grants of these scopes (one query), as {("s" | "o", scope id): [(benefit id,
    wanted, revoked by an operator)]}: enough to tell whether a scope's grants already match
    what it should hold."""
    found: dict = {}
    rows = BenefitGrant.objects.filter(
        Q(subscription_id__in=set(subscription_ids))
        | Q(subscription__isnull=True, order_id__in=set(order_ids))
    ).values_list("subscription_id", "order_id", "benefit_id", "wanted", "revoked_by_operator")
    for subscription_id, order_id, benefit_id, wanted, by_operator in rows:
        key = ("s", subscription_id) if subscription_id is not None else ("o", order_id)
        found.setdefault(key, []).append((benefit_id, wanted, by_operator))
    return found


def grants_match(grants: list, wanted_benefit_ids) -> bool:
    """True when a scope's grants (``scope_grants`` rows) are what it should hold: one per
    wanted benefit, each wanted as it should be (an operator's revocation stays)."""
    wanted_benefit_ids = set(wanted_benefit_ids)
    if wanted_benefit_ids - {benefit_id for benefit_id, _, _ in grants}:
        return False
    for benefit_id, wanted, by_operator in grants:
        target = W.GRANTED if benefit_id in wanted_benefit_ids and not by_operator else W.REVOKED
        if wanted != target:
            return False
    return True


def customer_grants(*, customer, status: str | None = BenefitGrant.Status.GRANTED) -> QuerySet[BenefitGrant]:
    grants = BenefitGrant.objects.filter(customer=customer).select_related("benefit")
    return grants.filter(status=status) if status else grants


def live_benefits(organization) -> QuerySet[Benefit]:
    return Benefit.objects.filter(organization=organization, deleted_at__isnull=True)
