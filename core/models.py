import uuid

from django.conf import settings
from django.db import models

from core import clock


class BaseModel(models.Model):
    """Every Recur row: a UUID primary key and creation/update times."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(default=clock.now, editable=False, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class AuditEntry(models.Model):
    """An action on an object, recorded by the service that performed it, with who did it
    (an operator, an API token, the customer or the system). Append-only."""

    class ActorKind(models.TextChoices):
        USER = "user", "operator"
        TOKEN = "token", "API token"
        CUSTOMER = "customer", "customer"
        SYSTEM = "system", "system"

    id = models.BigAutoField(primary_key=True)
    created_at = models.DateTimeField(default=clock.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_email = models.CharField(max_length=254, blank=True)
    actor_kind = models.CharField(max_length=10, choices=ActorKind.choices, default=ActorKind.SYSTEM)
    # The operator's e-mail, the token's "name (prefix…)", the customer's e-mail or the job's name.
    actor_label = models.CharField(max_length=200, blank=True)
    organization = models.ForeignKey(
        "accounts.Organization", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=100, db_index=True)
    object_type = models.CharField(max_length=100, db_index=True)
    object_id = models.CharField(max_length=64, db_index=True)
    object_repr = models.CharField(max_length=200, blank=True)
    reason = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "audit entry"
        verbose_name_plural = "audit log"

    def __str__(self) -> str:
        return f"{self.actor_display} {self.action} {self.object_repr}"

    @property
    def actor_display(self) -> str:
        """Who did it, in words: ``ops@x.test``, ``API token Deploy (recur_at_ab…)``,
        ``customer a@b.test``, ``system (renewals)``."""
        if not self.actor_label and self.actor_email:  # written before actor kinds existed
            return actor_words(self.ActorKind.USER, self.actor_email)
        return actor_words(self.actor_kind, self.actor_label)


def actor_words(kind: str, label: str) -> str:
    """Who acted, in words, from an actor kind and label (AuditEntry.ActorKind)."""
    if kind == AuditEntry.ActorKind.TOKEN:
        return f"API token {label}"
    if kind == AuditEntry.ActorKind.CUSTOMER:
        return f"customer {label}".strip()
    if kind == AuditEntry.ActorKind.SYSTEM:
        return f"system ({label})" if label else "system"
    return label or "operator"


class JobHeartbeat(models.Model):
    """Last time a named background job ran, written by the job itself."""

    name = models.CharField(max_length=100, primary_key=True)
    last_run_at = models.DateTimeField()
    hostname = models.CharField(max_length=200, blank=True)
    runs = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return self.name


class IdempotencyRecord(models.Model):
    """The stored outcome of an API write sent with an ``Idempotency-Key``."""

    class State(models.TextChoices):
        IN_PROGRESS = "in_progress"
        COMPLETED = "completed"

    id = models.BigAutoField(primary_key=True)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    state = models.CharField(max_length=20, choices=State.choices, default=State.IN_PROGRESS)
    response_status = models.PositiveSmallIntegerField(null=True)
    response_body = models.JSONField(null=True)
    created_at = models.DateTimeField(default=clock.now)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "key"], name="idempotency_key_unique_per_org")
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.path} [{self.key}]"
