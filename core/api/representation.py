"""A serializer's output for many rows at once, without DRF's per-field machinery.

Batch writers (renewals) record events whose payload must equal the API's GET of the object.
DRF spends most of its time per field (attribute lookup, ``to_representation`` dispatch);
for plain columns the answer is the value itself. ``compile_representation`` reads a
serializer's fields once and returns a function producing the same dict: plain values as
they are, UUIDs as strings, datetimes in ISO 8601 as DRF writes them, anything else through
the field itself. Nested serializers are left to the caller (they need related rows)."""

from collections.abc import Callable
from datetime import UTC
from functools import cache
from uuid import UUID

from rest_framework import ISO_8601, serializers
from rest_framework.settings import api_settings

PLAIN = (
    serializers.BooleanField,
    serializers.CharField,  # ChoiceField is not a CharField; listed below
    serializers.ChoiceField,
    serializers.IntegerField,
    serializers.JSONField,
)


def _iso(value) -> str | None:
    if value is None:
        return None
    text = value.astimezone(UTC).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _reader(field: serializers.Field) -> Callable:
    attrs = field.source_attrs
    if len(attrs) == 1 and not isinstance(field, serializers.BaseSerializer):
        attr = attrs[0]
        if isinstance(field, serializers.UUIDField) and field.uuid_format == "hex_verbose":
            return lambda obj: None if (v := getattr(obj, attr)) is None else str(v)
        if isinstance(field, serializers.DateTimeField) and _iso_utc(field):
            return lambda obj: _iso(getattr(obj, attr))
        if isinstance(field, PLAIN) and not isinstance(field, serializers.DecimalField):
            return lambda obj: _plain(getattr(obj, attr))

    def through_field(obj):
        attribute = field.get_attribute(obj)
        return None if attribute is None else field.to_representation(attribute)

    return through_field


def _plain(value):
    # Choices are str/int enums: the API renders their value.
    if isinstance(value, UUID):
        return str(value)
    return value


def _iso_utc(field: serializers.DateTimeField) -> bool:
    """Datetimes stored in UTC and rendered in ISO 8601 in UTC (our settings): the value's own
    isoformat is DRF's answer."""
    output = getattr(field, "format", api_settings.DATETIME_FORMAT)
    timezone = getattr(field, "timezone", None) or field.default_timezone()
    return output is not None and output.lower() == ISO_8601 and str(timezone) == "UTC"


@cache
def compile_representation(serializer_class: type, exclude: tuple[str, ...] = ()) -> Callable[[object], dict]:
    """obj -> the serializer's representation of it, for the fields not in ``exclude``."""
    fields = [
        (name, _reader(field))
        for name, field in serializer_class().fields.items()
        if name not in exclude and not field.write_only  # DRF never shows those
    ]

    def represent(obj) -> dict:
        return {name: read(obj) for name, read in fields}

    return represent


class CompiledRepresentation:
    """A serializer mixin: its output (``.data``) through ``compile_representation``, the same
    dict without building the serializer's fields on every instantiation. ModelSerializer
    introspects the model for each instance it is made for (about 1 ms for twenty fields),
    which a read of one row paid in full. Only for serializers whose output does not depend
    on their context (no request-relative links)."""

    def to_representation(self, instance):
        return compile_representation(type(self))(instance)
