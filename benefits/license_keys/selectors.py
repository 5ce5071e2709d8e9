"""Reads of license keys shared by the API, the backoffice and the customer's state."""

from django.db.models import Prefetch, QuerySet

from benefits.license_keys.models import LicenseKey, LicenseKeyActivation


def live_activations() -> QuerySet[LicenseKeyActivation]:
    return LicenseKeyActivation.objects.filter(deactivated_at__isnull=True).order_by("created_at")


def license_keys_with_activations(queryset: QuerySet[LicenseKey] | None = None) -> QuerySet[LicenseKey]:
    """Keys with their live activations in ``live_activations`` (one more query for all)."""
    queryset = LicenseKey.objects.all() if queryset is None else queryset
    return queryset.prefetch_related(Prefetch("activations", live_activations(), to_attr="live_activations"))


def license_key_customer_view(*, grant) -> dict:
    """What the customer's state shows of a license key grant (two queries: the key and its
    live activations)."""
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
