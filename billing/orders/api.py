import django_filters
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers
from rest_framework.decorators import action

from billing.orders.invoice_pdf import render_invoice_pdf
from billing.orders.models import Order, OrderItem
from core.api.fields import AddressSerializer
from core.api.viewsets import OrganizationScopedViewSet


class OrderItemSerializer(serializers.ModelSerializer):
    price_id = serializers.UUIDField(read_only=True, allow_null=True)

    class Meta:
        model = OrderItem
        fields = ["id", "label", "amount", "quantity", "proration", "price_id", "period_start", "period_end"]
        read_only_fields = fields


class OrderSerializer(serializers.ModelSerializer):
    customer_id = serializers.UUIDField(read_only=True)
    checkout_id = serializers.UUIDField(read_only=True, allow_null=True)
    subscription_id = serializers.UUIDField(read_only=True, allow_null=True)
    product_id = serializers.UUIDField(read_only=True, allow_null=True)
    discount_id = serializers.UUIDField(read_only=True, allow_null=True)
    billing_address = AddressSerializer(read_only=True, allow_null=True)
    items = OrderItemSerializer(many=True, read_only=True)

    class Meta:
        model = Order
        fields = [
            "id", "invoice_number", "status", "billing_reason", "customer_id", "currency",
            "subtotal", "discount_amount", "net", "tax", "total", "applied_balance", "due", "refunded_amount",
            "platform_fee", "tax_rate_bps", "tax_inclusive", "reverse_charge",
            "billing_name", "billing_address", "customer_tax_id",
            "checkout_id", "subscription_id", "product_id", "discount_id",
            "period_start", "period_end", "paid_at", "items", "metadata", "created_at",
        ]  # fmt: skip
        read_only_fields = fields


class OrderFilter(django_filters.FilterSet):
    customer_id = django_filters.UUIDFilter(field_name="customer_id")
    subscription_id = django_filters.UUIDFilter(field_name="subscription_id")
    product_id = django_filters.UUIDFilter(field_name="product_id")
    status = django_filters.ChoiceFilter(choices=Order.Status.choices)
    billing_reason = django_filters.CharFilter()
    invoice_number = django_filters.CharFilter()
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Order
        fields = [
            "customer_id",
            "subscription_id",
            "product_id",
            "status",
            "billing_reason",
            "invoice_number",
        ]


class OrderViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationScopedViewSet):
    """Orders: what customers paid (or owe) for purchases and subscription periods."""

    scope_resource = "orders"
    queryset = Order.objects.prefetch_related("items")
    serializer_class = OrderSerializer
    filterset_class = OrderFilter

    @extend_schema(
        responses={
            (200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY, description="The invoice PDF.")
        }
    )
    @action(detail=True, methods=["get"])
    def invoice(self, request, pk=None):
        order = self.get_object()
        filename = f"invoice-{order.invoice_number or order.pk}.pdf"
        response = HttpResponse(render_invoice_pdf(order), content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response
