import uuid

from django.db import models
from django.db.models import Q

from core import clock

EVENT_ID_PREFIX = "evt_"  # the public id: the prefix and the uuid's 32 hex digits


class Event(models.Model):
    """Something that happened to an organization's object, with the object as the API shows it
    at that moment. Append-only. ``id`` orders events: two events of one object are recorded
    under that object's row lock, so their ids are in the order they happened."""

    id = models.BigAutoField(primary_key=True)
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="+")
    type = models.CharField(max_length=100)
    object_type = models.CharField(max_length=50)
    object_id = models.CharField(max_length=64)
    data = models.JSONField()
    occurred_at = models.DateTimeField(default=clock.now)
    # Set by the dispatcher once the event's handlings exist; null = the sweeper's to dispatch.
    dispatched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["organization", "-id"], name="event_org_idx"),
            models.Index(fields=["organization", "type", "-id"], name="event_org_type_idx"),
            models.Index(fields=["object_type", "object_id", "id"], name="event_object_idx"),
            models.Index(
                fields=["id"], name="event_undispatched_idx", condition=Q(dispatched_at__isnull=True)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.object_type} {self.object_id}"

    @property
    def public_id(self) -> str:
        return f"{EVENT_ID_PREFIX}{self.uuid.hex}"


class EventHandling(models.Model):
    """One consumer's handling of one event."""

    class Status(models.TextChoices):
        PENDING = "pending"
        DONE = "done"
        FAILED = "failed"  # retried at next_attempt_at; given up when that is null

    id = models.BigAutoField(primary_key=True)
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="handlings")
    consumer = models.CharField(max_length=100)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=clock.now)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["event", "consumer"], name="eventhandling_once"),
        ]
        indexes = [
            models.Index(
                fields=["status", "next_attempt_at"],
                name="eventhandling_open_idx",
                condition=~Q(status="done"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.consumer} {self.status} {self.event_id}"
