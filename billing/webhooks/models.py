from django.db import models
from django.db.models import Q

from core import clock
from core.models import BaseModel

URL_MAX = 2000


class WebhookEndpoint(BaseModel):
    """A merchant's URL that receives the organization's events of the chosen types, signed
    with Standard Webhooks. After a rotation the previous secret signs too until it expires."""

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, related_name="webhook_endpoints"
    )
    url = models.URLField(max_length=URL_MAX)
    description = models.CharField(max_length=500, blank=True)
    event_types = models.JSONField(default=list, help_text='Event types delivered; ["*"] for all.')
    enabled = models.BooleanField(default=True)
    secret = models.CharField(max_length=100)  # whsec_...; shown once, never listed or logged
    previous_secret = models.CharField(max_length=100, blank=True)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    failing_since = models.DateTimeField(
        null=True, blank=True, help_text="First failure of the current run of failures."
    )
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.url


class WebhookDelivery(models.Model):
    """One event to one endpoint: ``pending -> delivered``, or ``failed`` (retrying at
    ``next_attempt_at``) until it is delivered or ``abandoned``. Deliveries of one object to
    one endpoint go out in event order (``object_key``)."""

    class Status(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        FAILED = "failed"
        ABANDONED = "abandoned"

    id = models.BigAutoField(primary_key=True)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="+")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey("events.Event", on_delete=models.CASCADE, related_name="+")
    object_key = models.CharField(max_length=120)  # "<object_type>:<object_id>"
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=clock.now)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "event"], name="webhookdelivery_once"),
        ]
        indexes = [
            models.Index(
                fields=["endpoint", "object_key", "event"],
                name="whdelivery_open_object_idx",
                condition=Q(status__in=["pending", "failed"]),
            ),
            models.Index(  # the sender's per-endpoint claim
                fields=["endpoint", "next_attempt_at", "id"],
                name="whdelivery_endpoint_due_idx",
                condition=Q(status__in=["pending", "failed"]),
            ),
            models.Index(
                fields=["next_attempt_at"],
                name="whdelivery_due_idx",
                condition=Q(status__in=["pending", "failed"]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_id} -> {self.endpoint_id} {self.status}"


class WebhookAttempt(models.Model):
    """One HTTP request of a delivery, kept for the merchant and the operator."""

    id = models.BigAutoField(primary_key=True)
    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempts_made")
    started_at = models.DateTimeField(default=clock.now)
    duration_ms = models.PositiveIntegerField(default=0)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_excerpt = models.TextField(blank=True)  # the first 1,000 characters
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.delivery_id} {self.status_code or self.error}"
