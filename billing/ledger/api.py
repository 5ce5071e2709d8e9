"""Placeholder: /v1/balance and /v1/ledger/transactions (filled in by the statements work)."""

from rest_framework import mixins, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.ledger.models import LedgerTransaction
from core.api.viewsets import IdempotentMixin, OrganizationScopedViewSet


class LedgerTransactionSerializer(serializers.ModelSerializer):
    class Meta:
        model = LedgerTransaction
        fields = ["id", "type", "created_at"]
        read_only_fields = fields


class LedgerTransactionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationScopedViewSet):
    scope_resource = "ledger"
    queryset = LedgerTransaction.objects.all()
    serializer_class = LedgerTransactionSerializer


class BalanceView(IdempotentMixin, APIView):
    scope_resource = "ledger"

    def get(self, request):
        return Response({"balances": []})
