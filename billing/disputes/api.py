"""Placeholder: the disputes API (filled in by the disputes work)."""

from rest_framework import mixins, serializers

from billing.disputes.models import Dispute
from core.api.viewsets import OrganizationScopedViewSet


class DisputeSerializer(serializers.ModelSerializer):
    class Meta:
        model = Dispute
        fields = ["id", "status", "amount", "currency", "created_at"]
        read_only_fields = fields


class DisputeViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationScopedViewSet):
    scope_resource = "disputes"
    queryset = Dispute.objects.all()
    serializer_class = DisputeSerializer
