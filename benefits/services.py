"""Every change to benefits: create, update and delete a benefit, set the benefits a product
unlocks, and an operator's grant, revoke and retry of one grant. The API and the backoffice
call these; the grant engine (``benefits.grants``) does the granting."""

from django.db import transaction
from rest_framework import serializers

from benefits import grants
from benefits.models import Benefit, BenefitGrant, ProductBenefit
from benefits.strategies import strategy_for
from billing.catalog.models import Product
from core import clock
from core.audit import audit_record
from core.errors import Conflict, InvalidInput
from core.events.services import event_record
from core.locks import lock_one

DESCRIPTION_MAX = 500
BENEFITS_PER_PRODUCT_MAX = 50
W = BenefitGrant.Wanted


def benefit_properties_clean(*, type: str, properties: dict | None, organization=None) -> dict:
    """The type's settings, validated by its strategy (which may check them against the
    ``organization``'s own rows, e.g. its files); an error names the field
    (``properties.prefix``)."""
    try:
        strategy = strategy_for(type)
    except LookupError:
        raise InvalidInput(f"Unknown benefit type {type!r}.", field="type", code="unknown_type") from None
    checked = strategy.properties_serializer(data=properties or {}, context={"organization": organization})
    if not checked.is_valid():
        field, messages = next(iter(checked.errors.items()))
        while isinstance(messages, dict):  # a nested setting: name it (properties.expires.ttl)
            inner, messages = next(iter(messages.items()))
            field = f"{field}.{inner}"
        message = messages[0] if isinstance(messages, list) else str(messages)
        raise InvalidInput(str(message), field=f"properties.{field}")
    return serializers.JSONField().to_representation(dict(checked.validated_data))


def _audit(actor, action: str, target, organization, reason: str = "", **data) -> None:
    audit_record(
        actor=actor, action=action, target=target, organization=organization, reason=reason, data=data
    )


@transaction.atomic
def benefit_create(
    *,
    organization,
    type: str,
    description: str,
    properties: dict | None = None,
    metadata: dict | None = None,
    actor=None,
) -> Benefit:
    description = (description or "").strip()
    if not description:
        raise InvalidInput("A description is required.", field="description")
    if len(description) > DESCRIPTION_MAX:
        raise InvalidInput(f"At most {DESCRIPTION_MAX} characters.", field="description")
    cleaned = benefit_properties_clean(type=type, properties=properties, organization=organization)
    ready, why = strategy_for(type).is_configured()
    if not ready:
        raise InvalidInput(why, field="type", code="not_configured")
    benefit = Benefit.objects.create(
        organization=organization,
        type=type,
        description=description,
        properties=cleaned,
        metadata=metadata or {},
    )
    event_record(type="benefit.created", obj=benefit)
    _audit(actor, "benefit.create", benefit, organization, type=type)
    return benefit


def _lock_benefit(benefit: Benefit) -> Benefit:
    locked = lock_one(Benefit, benefit.pk)
    if locked is None or locked.deleted_at is not None:
        raise Conflict("The benefit was deleted.", code="benefit_deleted")
    return locked


@transaction.atomic
def benefit_update(
    *,
    benefit: Benefit,
    description: str | None = None,
    properties: dict | None = None,
    metadata: dict | None = None,
    actor=None,
) -> Benefit:
    """Change a benefit; when its settings change, every live grant applies them."""
    benefit = _lock_benefit(benefit)
    changed = []
    if description is not None:
        description = description.strip()
        if not description or len(description) > DESCRIPTION_MAX:
            raise InvalidInput(f"Between 1 and {DESCRIPTION_MAX} characters.", field="description")
        benefit.description = description
        changed.append("description")
    if properties is not None:
        cleaned = benefit_properties_clean(
            type=benefit.type, properties=properties, organization=benefit.organization
        )
        if cleaned != benefit.properties:
            benefit.properties = cleaned
            changed.append("properties")
    if metadata is not None:
        benefit.metadata = metadata
        changed.append("metadata")
    if not changed:
        return benefit
    benefit.save()
    if "properties" in changed:
        grants.grants_request_update(benefit_id=benefit.pk)
    event_record(type="benefit.updated", obj=benefit)
    _audit(actor, "benefit.update", benefit, benefit.organization, fields=changed)
    return benefit


@transaction.atomic
def benefit_delete(*, benefit: Benefit, actor=None) -> Benefit:
    """Hide the benefit and revoke every grant of it (in batches, by the sweeper); products
    stop unlocking it. Grants and their history stay."""
    benefit = _lock_benefit(benefit)
    benefit.deleted_at = clock.now()
    benefit.save(update_fields=["deleted_at", "updated_at"])
    ProductBenefit.objects.filter(benefit=benefit).delete()
    grants.grants_request_revoke_all(benefit_id=benefit.pk, reason="benefit deleted")
    event_record(type="benefit.deleted", obj=benefit)
    _audit(actor, "benefit.delete", benefit, benefit.organization)
    return benefit


@transaction.atomic
def product_benefits_set(*, product: Product, benefits: list[Benefit], actor=None) -> list[ProductBenefit]:
    """The benefits ``product`` unlocks, in this order. A benefit added reaches every existing
    holder of the product, a benefit removed leaves them, both in batches
    (``benefits.sync_product_benefit``, resumed by the sweeper)."""
    product = lock_one(Product, product.pk)
    ids = [b.pk for b in benefits]
    if len(ids) != len(set(ids)):
        raise InvalidInput("A benefit is listed twice.", field="benefit_ids")
    if len(ids) > BENEFITS_PER_PRODUCT_MAX:
        raise InvalidInput(f"At most {BENEFITS_PER_PRODUCT_MAX} benefits per product.", field="benefit_ids")
    for benefit in benefits:
        if benefit.organization_id != product.organization_id or benefit.deleted_at is not None:
            raise InvalidInput(f"No such benefit: {benefit.pk}.", field="benefit_ids", code="not_found")
    now = clock.now()
    existing = {link.benefit_id: link for link in ProductBenefit.objects.filter(product=product)}
    added, removed = [], []
    for position, benefit_id in enumerate(ids):
        link = existing.get(benefit_id)
        if link is None:
            link = ProductBenefit.objects.create(
                organization_id=product.organization_id,
                product=product,
                benefit_id=benefit_id,
                position=position,
            )
            added.append(benefit_id)
        elif link.removed_at is not None or link.position != position:
            if link.removed_at is not None:  # taken back before its removal finished
                link.removed_at, link.synced_at, link.sync_cursor = None, None, ""
                added.append(benefit_id)
            link.position = position
            link.save()
    for benefit_id, link in existing.items():
        if benefit_id not in ids and link.removed_at is None:
            link.removed_at, link.sync_cursor = now, ""
            link.save(update_fields=["removed_at", "sync_cursor", "updated_at"])
            removed.append(benefit_id)
    pending = list(
        ProductBenefit.objects.filter(product=product).exclude(synced_at__isnull=False, removed_at=None)
    )
    for link in pending:
        transaction.on_commit(lambda pk=str(link.pk): _sync(pk), robust=True)
    if added or removed:
        _audit(
            actor,
            "product.benefits_set",
            product,
            product.organization,
            added=[str(b) for b in added],
            removed=[str(b) for b in removed],
        )
    return list(
        ProductBenefit.objects.filter(product=product, removed_at__isnull=True).select_related("benefit")
    )


def _sync(product_benefit_id: str) -> None:
    from benefits.tasks import sync_product_benefit

    sync_product_benefit.delay(product_benefit_id)


def _lock_grant(grant: BenefitGrant) -> BenefitGrant:
    return lock_one(BenefitGrant.objects.select_related("benefit", "organization"), grant.pk)


@transaction.atomic
def benefit_grant_revoke(*, grant: BenefitGrant, reason: str = "", actor=None) -> BenefitGrant:
    """An operator takes a grant back now; billing events do not give it back until an
    operator grants it again."""
    grant = _lock_grant(grant)
    if grant.wanted == W.REVOKED and grant.revoked_by_operator:
        raise Conflict("The grant is already revoked.", code="grant_revoked")
    grant.revoked_by_operator = True
    grant.save(update_fields=["revoked_by_operator", "updated_at"])
    grants.grant_want(grant=grant, granted=False, reason=f"operator: {reason}" if reason else "operator")
    _audit(actor, "benefit_grant.revoke", grant, grant.organization, reason=reason)
    return grant


@transaction.atomic
def benefit_grant_grant(*, grant: BenefitGrant, reason: str = "", actor=None) -> BenefitGrant:
    """An operator gives a revoked grant back (and lifts an operator's revocation)."""
    grant = _lock_grant(grant)
    if grant.wanted == W.GRANTED:
        raise Conflict("The grant is already granted.", code="grant_granted")
    if grant.benefit.deleted_at is not None:
        raise Conflict("The benefit was deleted.", code="benefit_deleted")
    grant.revoked_by_operator = False
    grant.save(update_fields=["revoked_by_operator", "updated_at"])
    grants.grant_want(grant=grant, granted=True, reason="")
    _audit(actor, "benefit_grant.grant", grant, grant.organization, reason=reason)
    return grant


@transaction.atomic
def benefit_grant_retry(*, grant: BenefitGrant, actor=None) -> BenefitGrant:
    """Try a failed grant's work again now (it gave up, or waits for its backoff)."""
    grant = _lock_grant(grant)
    if not grant.error:
        raise Conflict("The grant has no failure to retry.", code="grant_not_failed")
    grants.grant_retry_now(grant=grant)
    _audit(actor, "benefit_grant.retry", grant, grant.organization)
    return grant
