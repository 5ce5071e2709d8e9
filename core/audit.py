"""The operator audit log. Services call ``audit_record`` inside their transaction."""

import json
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from core.models import AuditEntry


def audit_record(
    *,
    actor,
    action: str,
    target: models.Model,
    organization=None,
    reason: str = "",
    data: dict[str, Any] | None = None,
) -> AuditEntry:
    return AuditEntry.objects.create(
        actor=actor if getattr(actor, "pk", None) else None,
        actor_email=getattr(actor, "email", "") or "",
        organization=organization,
        action=action,
        object_type=target._meta.label_lower,
        object_id=str(target.pk),
        object_repr=str(target)[:200],
        reason=reason,
        data=data or {},
    )


def json_safe(data: dict[str, Any]) -> dict[str, Any]:
    """Audit data as plain JSON (dates, decimals and UUIDs as strings)."""
    return json.loads(json.dumps(data, cls=DjangoJSONEncoder))
