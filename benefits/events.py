"""Benefits and grants as event objects (the catalogue's benefit.* and benefit_grant.*)."""

from django.db.models import Prefetch

from benefits.models import Benefit, BenefitGrant, ProductBenefit
from benefits.serializers import BenefitGrantSerializer, BenefitSerializer
from core.events.registry import register_object

BENEFIT_EVENTS = {
    "created": "A benefit was created.",
    "updated": "A benefit's description or settings changed (its holders' grants follow).",
    "deleted": "A benefit was deleted: every grant of it is revoked.",
}
GRANT_EVENTS = {
    "created": "A customer was granted a benefit (a purchase, a subscription, the benefit added to "
    "a product they hold). For custom benefits, deliver it now.",
    "updated": "A grant changed: granted again after a revocation, or the benefit's settings applied.",
    "cycled": "A subscription renewed and the grant renewed with it (credits, a license's expiry).",
    "revoked": "A grant was revoked (`revoke_reason` says why: the subscription ended, a refund, "
    "a dispute, an operator, the benefit removed).",
}


def register() -> None:
    register_object(
        "benefit",
        model=Benefit,
        serializer=BenefitSerializer,
        events=BENEFIT_EVENTS,
        prepare=lambda qs: qs.prefetch_related(Prefetch("product_benefits", ProductBenefit.objects.all())),
    )
    register_object(
        "benefit_grant",
        model=BenefitGrant,
        serializer=BenefitGrantSerializer,
        events=GRANT_EVENTS,
        prepare=lambda qs: qs.select_related("benefit"),
    )
