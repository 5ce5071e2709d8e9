"""``feature_flag``: a flag the merchant's app reads from the customer's state."""

from rest_framework import serializers

from benefits.strategies import BenefitStrategy, register_strategy

METADATA_KEYS_MAX = 50


class FeatureFlagProperties(serializers.Serializer):
    key = serializers.RegexField(
        r"^[a-z0-9][a-z0-9_.:-]{0,99}$",
        help_text="The flag's name in your app, e.g. 'pro_reports' (lowercase, digits, _ . : -).",
    )
    metadata = serializers.DictField(
        child=serializers.JSONField(),
        required=False,
        default=dict,
        help_text="Anything your app reads with the flag (limits, tiers).",
    )

    def validate_metadata(self, value: dict) -> dict:
        if len(value) > METADATA_KEYS_MAX:
            raise serializers.ValidationError(f"At most {METADATA_KEYS_MAX} keys.")
        return value


@register_strategy
class FeatureFlagStrategy(BenefitStrategy):
    type = "feature_flag"
    label = "Feature flag"
    description = "A flag with metadata that your app reads from GET /v1/customers/{id}/state."
    properties_serializer = FeatureFlagProperties

    def customer_view(self, *, grant, benefit) -> dict:
        return {"key": benefit.properties.get("key"), "metadata": benefit.properties.get("metadata", {})}
