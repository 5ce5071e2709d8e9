"""/v1/webhook-endpoints and /v1/webhook-deliveries.

Serializers check shapes; the rules (which URLs may be called, known event types, secrets)
live in ``billing.webhooks.services``, which the backoffice calls too. The secret appears in
two responses only: the endpoint's creation and a rotation.
"""

import django_filters
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from billing.webhooks import services
from billing.webhooks.addresses import URL_MAX
from billing.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from core.api.viewsets import IDEMPOTENCY_PARAMETER, OrganizationScopedViewSet

EVENT_TYPES_HELP = 'Event types to receive (see the event catalogue), or ["*"] for every type.'


class WebhookEndpointSerializer(serializers.ModelSerializer):
    event_types = serializers.ListField(
        child=serializers.CharField(), read_only=True, help_text=EVENT_TYPES_HELP
    )
    failing_since = serializers.DateTimeField(
        read_only=True, allow_null=True, help_text="Start of the current run of failed deliveries."
    )
    disabled_reason = serializers.CharField(read_only=True, help_text="Why the endpoint was disabled.")
    previous_secret_expires_at = serializers.DateTimeField(
        read_only=True,
        allow_null=True,
        help_text="After a rotation, the previous secret signs too until this time.",
    )

    class Meta:
        model = WebhookEndpoint
        fields = [
            "id", "url", "description", "event_types", "enabled", "failing_since", "disabled_at",
            "disabled_reason", "previous_secret_expires_at", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields


class WebhookEndpointWithSecretSerializer(WebhookEndpointSerializer):
    secret = serializers.CharField(
        read_only=True, help_text="The signing secret (whsec_...); shown only now."
    )

    class Meta(WebhookEndpointSerializer.Meta):
        fields = [*WebhookEndpointSerializer.Meta.fields, "secret"]
        read_only_fields = fields


class WebhookEndpointWriteSerializer(serializers.Serializer):
    url = serializers.CharField(
        max_length=URL_MAX,
        help_text="https URL that receives the POSTs (http and local addresses only in development).",
    )
    event_types = serializers.ListField(
        child=serializers.CharField(max_length=100), min_length=1, max_length=100, help_text=EVENT_TYPES_HELP
    )
    description = serializers.CharField(max_length=services.DESCRIPTION_MAX, required=False, allow_blank=True)
    enabled = serializers.BooleanField(required=False)


class TestEventSerializer(serializers.Serializer):
    event_id = serializers.CharField(help_text="The test event's id: the webhook-id header of its request.")
    type = serializers.CharField()


class RedeliveredSerializer(serializers.Serializer):
    redelivered = serializers.IntegerField(help_text="Deliveries sent again.")


class WebhookAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookAttempt
        fields = ["id", "started_at", "duration_ms", "status_code", "response_excerpt", "error"]
        read_only_fields = fields


class WebhookDeliverySerializer(serializers.ModelSerializer):
    endpoint_id = serializers.UUIDField(read_only=True)
    event_id = serializers.CharField(
        source="event.public_id", read_only=True, help_text="Also the webhook-id."
    )
    event_type = serializers.CharField(source="event.type", read_only=True)
    status = serializers.ChoiceField(
        choices=WebhookDelivery.Status.choices,
        read_only=True,
        help_text="pending, delivered, failed (retried at next_attempt_at) or abandoned (retries ran out).",
    )
    attempts_made = WebhookAttemptSerializer(many=True, read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "id", "endpoint_id", "event_id", "event_type", "object_key", "status", "attempts",
            "next_attempt_at", "last_status_code", "created_at", "delivered_at", "attempts_made",
        ]  # fmt: skip
        read_only_fields = fields


class WebhookDeliveryFilter(django_filters.FilterSet):
    endpoint = django_filters.UUIDFilter(field_name="endpoint_id")
    status = django_filters.ChoiceFilter(choices=WebhookDelivery.Status.choices)
    event_type = django_filters.CharFilter(field_name="event__type", max_length=100)

    class Meta:
        model = WebhookDelivery
        fields = ["endpoint", "status", "event_type"]


class WebhookEndpointViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationScopedViewSet):
    """Where Recur POSTs your events, signed with Standard Webhooks."""

    scope_resource = "webhooks"
    queryset = WebhookEndpoint.objects.all()
    serializer_class = WebhookEndpointSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    @extend_schema(
        operation_id="webhook_endpoints_create",
        request=WebhookEndpointWriteSerializer,
        responses={201: WebhookEndpointWithSecretSerializer},
        parameters=[IDEMPOTENCY_PARAMETER],
        description="Create an endpoint. The answer holds its signing `secret`, shown only once. "
        "400 on `url` for a URL that is not http(s), too long, or (in production) not https or "
        "resolving to a private address; 400 on `event_types` for an unknown type.",
    )
    def create(self, request):
        body = WebhookEndpointWriteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        endpoint, secret = services.webhook_endpoint_create(
            organization=self.organization, **body.validated_data
        )
        endpoint.secret = secret
        return Response(WebhookEndpointWithSecretSerializer(endpoint).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="webhook_endpoints_partial_update",
        request=WebhookEndpointWriteSerializer(partial=True),
        responses=WebhookEndpointSerializer,
        parameters=[IDEMPOTENCY_PARAMETER],
    )
    def partial_update(self, request, pk=None):
        endpoint = self.get_object()
        body = WebhookEndpointWriteSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        endpoint = services.webhook_endpoint_update(endpoint=endpoint, **body.validated_data)
        return Response(WebhookEndpointSerializer(endpoint).data)

    @extend_schema(operation_id="webhook_endpoints_destroy", parameters=[IDEMPOTENCY_PARAMETER])
    def destroy(self, request, pk=None):
        services.webhook_endpoint_delete(endpoint=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        operation_id="webhook_endpoints_rotate_secret",
        request=None,
        responses=WebhookEndpointWithSecretSerializer,
        parameters=[IDEMPOTENCY_PARAMETER],
        description="A new signing secret, shown only now. For 24 hours both the new and the previous "
        "secret sign every request (two `v1,` signatures), so you can switch without losing events.",
    )
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, pk=None):
        secret = services.webhook_endpoint_rotate_secret(endpoint=self.get_object())
        endpoint = self.get_queryset().get(pk=pk)
        endpoint.secret = secret
        return Response(WebhookEndpointWithSecretSerializer(endpoint).data)

    @extend_schema(
        operation_id="webhook_endpoints_test",
        request=None,
        responses={202: TestEventSerializer},
        parameters=[IDEMPOTENCY_PARAMETER],
        description="Send a `webhook_endpoint.test` event to this endpoint (only), through the usual "
        "delivery path; follow it in /v1/webhook-deliveries.",
    )
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        event = services.webhook_endpoint_send_test(endpoint=self.get_object())
        return Response({"event_id": event.public_id, "type": event.type}, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        operation_id="webhook_endpoints_redeliver",
        request=None,
        responses=RedeliveredSerializer,
        parameters=[IDEMPOTENCY_PARAMETER],
        description="Send every failed or abandoned delivery of this endpoint again now.",
    )
    @action(detail=True, methods=["post"])
    def redeliver(self, request, pk=None):
        count = services.webhook_endpoint_redeliver_failed(endpoint=self.get_object())
        return Response({"redelivered": count})


class WebhookDeliveryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationScopedViewSet):
    """Each event sent to each endpoint, with its attempts (status code, duration, response excerpt)."""

    scope_resource = "webhooks"
    queryset = (
        WebhookDelivery.objects.select_related("event").defer("event__data").prefetch_related("attempts_made")
    )
    serializer_class = WebhookDeliverySerializer
    filterset_class = WebhookDeliveryFilter

    @extend_schema(
        operation_id="webhook_deliveries_redeliver",
        request=None,
        responses=WebhookDeliverySerializer,
        parameters=[IDEMPOTENCY_PARAMETER],
        description="Send this delivery again now, with the same webhook-id.",
    )
    @action(detail=True, methods=["post"])
    def redeliver(self, request, pk=None):
        delivery = services.webhook_delivery_redeliver(delivery=self.get_object())
        return Response(WebhookDeliverySerializer(self.get_queryset().get(pk=delivery.pk)).data)
