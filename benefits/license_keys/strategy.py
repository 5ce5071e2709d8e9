"""``license_keys``: a key per grant, with a prefix, a format, activation and usage limits
and an expiry relative to the grant (renewed with each subscription period).

The strategy writes only our own rows, so it runs inside the grant engine's transaction
with the grant locked; every call is idempotent per grant (the key is found by its grant).
"""

from rest_framework import serializers

from benefits.license_keys import keys, services
from benefits.license_keys.selectors import license_key_customer_view, license_keys_preload
from benefits.strategies import BenefitStrategy, register_strategy

ACTIVATIONS_MAX = 50
USAGE_MAX = 10**12
TTL_MAX = 1000


class ActivationsProperties(serializers.Serializer):
    limit = serializers.IntegerField(
        min_value=1, max_value=ACTIVATIONS_MAX, help_text="How many installations may use a key at once."
    )
    customer_can_deactivate = serializers.BooleanField(
        default=True,
        help_text="The customer's app may free an activation itself (the public deactivate endpoint).",
    )


class ExpiresProperties(serializers.Serializer):
    ttl = serializers.IntegerField(min_value=1, max_value=TTL_MAX, help_text="How many timeframes.")
    timeframe = serializers.ChoiceField(choices=list(keys.TIMEFRAMES))


class LicenseKeysProperties(serializers.Serializer):
    prefix = serializers.RegexField(
        r"^[A-Za-z0-9]{1,16}$",
        required=False,
        allow_blank=True,
        default="",
        help_text="Letters and digits put before each key, e.g. 'MYAPP' (stored uppercase).",
    )
    format = serializers.ChoiceField(
        choices=list(keys.FORMATS),
        default="groups",
        help_text="groups: XXXX-XXXX-XXXX-XXXX (80 random bits, no look-alike letters); uuid4: a UUID.",
    )
    activations = ActivationsProperties(
        required=False, allow_null=True, default=None, help_text="Omit for keys without activations."
    )
    limit_usage = serializers.IntegerField(
        min_value=1,
        max_value=USAGE_MAX,
        required=False,
        allow_null=True,
        default=None,
        help_text="Usage a key may count through validations (increment_usage); omit for no limit.",
    )
    expires = ExpiresProperties(
        required=False,
        allow_null=True,
        default=None,
        help_text="How long after the grant (or the subscription's renewal) a key expires; omit for never.",
    )

    def validate_prefix(self, value: str) -> str:
        return value.upper()


@register_strategy
class LicenseKeysStrategy(BenefitStrategy):
    type = "license_keys"
    label = "License keys"
    description = "A license key per customer, validated and activated through the public license key API."
    properties_serializer = LicenseKeysProperties

    def grant(self, *, grant, benefit) -> dict:
        return _properties(grant, services.license_key_issue(grant=grant, benefit=benefit))

    def revoke(self, *, grant, benefit) -> dict:
        key = services.license_key_withdraw(grant=grant)
        return _properties(grant, key) if key else dict(grant.properties)

    def cycle(self, *, grant, benefit) -> dict:
        return _properties(grant, services.license_key_renew(grant=grant, benefit=benefit))

    def update(self, *, grant, benefit) -> dict:
        return _properties(grant, services.license_key_apply_benefit(grant=grant, benefit=benefit))

    def prepare_customer_views(self, grants: list) -> None:
        license_keys_preload(grants)

    def customer_view(self, *, grant, benefit) -> dict:
        return license_key_customer_view(grant=grant)


def _properties(grant, key) -> dict:
    # Only the id and the masked key: grant properties travel in webhook payloads.
    return {**grant.properties, "license_key_id": str(key.pk), "display_key": key.display_key}
