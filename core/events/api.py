"""``GET /v1/events`` and ``GET /v1/events/{id}``: the organization's domain events, newest
first, in the shape webhooks carry them (plus the object's type and id), as Stripe has."""

import uuid

import django_filters
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers
from rest_framework.exceptions import NotFound

from core.api.pagination import CreatedCursorPagination
from core.api.viewsets import OrganizationScopedViewSet
from core.events.models import EVENT_ID_PREFIX, Event
from core.events.registry import REGISTRY
from core.events.services import event_envelope


def _type_choices():
    return sorted((name, name) for name in REGISTRY.types)


def _object_type_choices():
    return sorted((name, name) for name in REGISTRY.kinds)


@extend_schema_field(
    {"type": "object", "additionalProperties": True, "description": "The object as its API GET shows it."}
)
class ObjectDataField(serializers.JSONField):
    pass


class EventSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="`evt_` and 32 hex digits; the webhook's `webhook-id` too.")
    type = serializers.CharField(help_text="One of the catalogue's types (docs/webhooks.md).")
    created_at = serializers.CharField(help_text="When it happened (ISO 8601, UTC).")
    organization_id = serializers.UUIDField()
    object_type = serializers.CharField(help_text="The kind of object: `order`, `customer` …")
    object_id = serializers.CharField()
    data = ObjectDataField()

    def to_representation(self, event: Event) -> dict:
        return {**event_envelope(event), "object_type": event.object_type, "object_id": event.object_id}


class EventFilter(django_filters.FilterSet):
    type = django_filters.ChoiceFilter(choices=_type_choices, help_text="One event type, e.g. `order.paid`.")
    object_type = django_filters.ChoiceFilter(choices=_object_type_choices)
    object_id = django_filters.CharFilter(
        max_length=64, help_text="The events of one object, e.g. an order's."
    )

    class Meta:
        model = Event
        fields = ["type", "object_type", "object_id"]


class EventCursorPagination(CreatedCursorPagination):
    """Newest first by ``id``, the order events happened in."""

    ordering = ("-id",)

    def position_is_valid(self, position: str) -> bool:
        return position.isascii() and position.isdigit() and len(position) < 20


@extend_schema_view(
    retrieve=extend_schema(
        parameters=[
            OpenApiParameter(
                "id", str, OpenApiParameter.PATH, description="The event's id, `evt_` and 32 hex digits."
            )
        ]
    )
)
class EventViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationScopedViewSet):
    """What happened to your objects (the webhook catalogue), kept for you to read back."""

    scope_resource = "events"
    queryset = Event.objects.all()
    serializer_class = EventSerializer
    filterset_class = EventFilter
    pagination_class = EventCursorPagination
    lookup_value_regex = "[^/]+"

    def get_object(self) -> Event:
        raw = self.kwargs["pk"]
        try:
            if not raw.startswith(EVENT_ID_PREFIX):
                raise ValueError(raw)
            public = uuid.UUID(hex=raw[len(EVENT_ID_PREFIX) :])
        except ValueError:
            raise NotFound("No event of yours has this id.") from None
        event = self.get_queryset().filter(uuid=public).first()
        if event is None:
            raise NotFound("No event of yours has this id.")
        return event
