"""Ids that come from outside (URLs, request bodies, processor metadata)."""

import uuid
from typing import Any


def parse_uuid(value: Any) -> uuid.UUID | None:
    """The UUID in ``value``, or None if it is not one (so lookups never raise on bad input)."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError, AttributeError):
        return None
