from babel import Locale
from rest_framework import serializers

# Babel's territories minus its groupings and placeholders (EU, UN, ZZ, ...); XK (Kosovo) stays.
NOT_COUNTRIES = frozenset({"EU", "EZ", "UN", "QO", "XA", "XB", "ZZ"})
COUNTRY_CODES = frozenset(
    code
    for code in Locale("en").territories
    if len(code) == 2 and code.isalpha() and code not in NOT_COUNTRIES
)

METADATA_MAX_KEYS = 50
METADATA_KEY_MAX = 40
METADATA_VALUE_MAX = 500


class MetadataField(serializers.DictField):
    """Stripe-style metadata: up to 50 string keys of 40 characters, string values of 500."""

    def __init__(self, **kwargs):
        kwargs.setdefault("child", serializers.CharField(max_length=METADATA_VALUE_MAX, allow_blank=True))
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if len(value) > METADATA_MAX_KEYS:
            raise serializers.ValidationError(f"At most {METADATA_MAX_KEYS} keys.", code="too_many_keys")
        for key in value:
            if not key or len(key) > METADATA_KEY_MAX:
                raise serializers.ValidationError(
                    f"Keys must be 1 to {METADATA_KEY_MAX} characters.", code="invalid_key"
                )
        return value


class CountryField(serializers.CharField):
    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 2)
        kwargs.setdefault("min_length", 2)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data).upper()
        if value not in COUNTRY_CODES:
            raise serializers.ValidationError(
                "Use an ISO 3166-1 alpha-2 country code.", code="invalid_country"
            )
        return value


class AddressSerializer(serializers.Serializer):
    line1 = serializers.CharField(max_length=200, required=False, allow_blank=True)
    line2 = serializers.CharField(max_length=200, required=False, allow_blank=True)
    city = serializers.CharField(max_length=100, required=False, allow_blank=True)
    state = serializers.CharField(max_length=100, required=False, allow_blank=True)
    postal_code = serializers.CharField(max_length=20, required=False, allow_blank=True)
    country = CountryField()


class OptionalURLField(serializers.URLField):
    """A URL column stored blank when unset, answered as null: never an empty string posing as a uri."""

    def __init__(self, **kwargs):
        kwargs.setdefault("allow_null", True)
        super().__init__(**kwargs)

    def to_representation(self, value):
        return value or None
