"""Reads of license keys shared by the API, the backoffice and the customer's state."""

from django.db.models import Prefetch, QuerySet

from benefits.license_keys.models import LicenseKey, LicenseKeyActivation


def live_activations() -> QuerySet[LicenseKeyActivation]:
    return LicenseKeyActivation.objects.filter(deactivated_at__isnull=True).order_by("created_at")


def license_keys_with_activations(queryset: QuerySet[LicenseKey] | None = None) -> QuerySet[LicenseKey]:
    """Keys with their live activations in ``live_activations`` (one more query for all)."""
    queryset = LicenseKey.objects.all() if queryset is None else queryset
    return queryset.prefetch_related(Prefetch("activations", live_activations(), to_attr="live_activations"))


def license_keys_preload(grants: list) -> None:
    """The keys of these grants and their live activations, two queries for all of them,
    kept on each grant (``grant.preloaded_license_key``) for ``license_key_customer_view``."""
    keys = {k.grant_id: k for k in license_keys_with_activations(LicenseKey.objects.filter(grant__in=grants))}
    for grant in grants:
        grant.preloaded_license_key = keys.get(grant.pk)


def license_key_customer_view(*, grant) -> dict:
    """What the customer's state shows of a license key grant (read from the preload when the
    state made one, else two queries: the key and its live activations)."""
    if hasattr(grant, "preloaded_license_key"):
        key = grant.preloaded_license_key
    else:
        key = license_keys_with_activations(LicenseKey.objects.filter(grant=grant)).first()
    if key is None:
        return {}
    return {
        "license_key_id": str(key.pk),
        "key": key.key,
        "display_key": key.display_key,
        "status": key.status,
        "expires_at": key.expires_at.isoformat() if key.expires_at else None,
        "usage": key.usage,
        "limit_usage": key.limit_usage,
        "limit_activations": key.limit_activations,
        "validations": key.validations,
        "activations": [
            {"id": str(a.pk), "label": a.label, "meta": a.meta, "created_at": a.created_at.isoformat()}
            for a in key.live_activations
        ],
    }
