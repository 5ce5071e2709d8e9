import django_filters
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from billing.orders.invoice_pdf import render_invoice_pdf
from billing.orders.models import Order, OrderItem
from billing.orders.selectors import order_payments
from billing.payments.models import Payment
from core.api.fields import AddressSerializer
from core.api.filters import DateTimeFilter
from core.api.viewsets import IDEMPOTENCY_PARAMETER, OrganizationScopedViewSet


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
            "subtotal", "discount_amount", "net", "tax", "total", "applied_balance", "carried_forward", "due",
            "refunded_amount",
            "platform_fee", "tax_rate_bps", "tax_inclusive", "reverse_charge",
            "billing_name", "billing_address", "customer_tax_id",
            "checkout_id", "subscription_id", "product_id", "discount_id",
            "period_start", "period_end", "paid_at", "items", "metadata", "created_at",
        ]  # fmt: skip
        read_only_fields = fields


class OrderPaymentSerializer(serializers.ModelSerializer):
    """One payment attempt for an order."""

    status = serializers.CharField(
        help_text="pending, processing, requires_action, succeeded, failed or canceled."
    )
    trigger = serializers.CharField(
        help_text="What started the attempt: purchase, cycle, subscription_change, dunning_retry, "
        "customer_retry, operator_retry ..."
    )

    class Meta:
        model = Payment
        fields = ["id", "attempt", "trigger", "status", "amount", "currency", "decline_code",
                  "decline_message", "created_at"]  # fmt: skip
        read_only_fields = fields


class OrderWithPaymentSerializer(OrderSerializer):
    latest_payment = OrderPaymentSerializer(
        read_only=True, allow_null=True, help_text="The newest payment attempt for the order."
    )

    class Meta(OrderSerializer.Meta):
        fields = [*OrderSerializer.Meta.fields, "latest_payment"]
        read_only_fields = fields


class OrderFilter(django_filters.FilterSet):
    customer_id = django_filters.UUIDFilter(field_name="customer_id")
    subscription_id = django_filters.UUIDFilter(field_name="subscription_id")
    product_id = django_filters.UUIDFilter(field_name="product_id")
    status = django_filters.ChoiceFilter(choices=Order.Status.choices)
    billing_reason = django_filters.CharFilter()
    invoice_number = django_filters.CharFilter()
    created_after = DateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = DateTimeFilter(field_name="created_at", lookup_expr="lt")

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

    def perform_content_negotiation(self, request, force=False):
        # The invoice answers a PDF even to `Accept: application/pdf` (what the schema says it
        # returns, so generated clients send it); errors stay JSON.
        return super().perform_content_negotiation(request, force=force or self.action == "invoice")

    @extend_schema(
        responses={
            (200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY, description="The invoice PDF."),
            # The same bytes for generators that map only octet-stream to bytes
            # (openapi-python-client); the answer's Content-Type is application/pdf either way.
            (200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY),
        }
    )
    @action(detail=True, methods=["get"])
    def invoice(self, request, pk=None):
        order = self.get_object()
        filename = f"invoice-{order.invoice_number or order.pk}.pdf"
        response = HttpResponse(render_invoice_pdf(order), content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response

    @extend_schema(
        operation_id="orders_retry_payment",
        request=None,
        responses=OrderWithPaymentSerializer,
        parameters=[IDEMPOTENCY_PARAMETER],
        description="Charge an unpaid (pending) order now, with the customer's default payment method. "
        "Automatic dunning retries are not used up. `latest_payment` tells how the attempt went; "
        "409 `order_not_payable` when the order is not pending.",
    )
    @action(detail=True, methods=["post"])
    def retry_payment(self, request, pk=None):
        from billing.orders.collection import order_payment_retry

        order = self.get_object()
        order_payment_retry(order=order, by_customer=False)
        order = self.get_queryset().get(pk=order.pk)  # as the payment left it
        order.latest_payment = order_payments(order).order_by("-created_at", "-attempt").first()
        return Response(OrderWithPaymentSerializer(order).data)
