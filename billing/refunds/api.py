"""Placeholder: the refunds API (filled in by the refunds work)."""

from rest_framework import mixins, serializers

from billing.refunds.models import Refund
from core.api.viewsets import OrganizationScopedViewSet


class RefundSerializer(serializers.ModelSerializer):
    class Meta:
        model = Refund
        fields = ["id", "status", "amount", "currency", "created_at"]
        read_only_fields = fields


class RefundViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationScopedViewSet):
    scope_resource = "refunds"
    queryset = Refund.objects.all()
    serializer_class = RefundSerializer
