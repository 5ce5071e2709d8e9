"""The operator audit log. Services call ``audit_record`` inside their transaction."""

from typing import Any

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
