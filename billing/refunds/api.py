"""/v1/refunds: refund a paid order (full or partial), preview a refund, list and get refunds.

The serializers check shapes; every rule (what is refundable, the card and wallet split,
the tax given back) lives in ``billing.refunds.services``, which the backoffice calls too.
"""

import django_filters
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from billing.money import LEDGER_AMOUNT_MAX
from billing.orders.models import Order
from billing.refunds import services
from billing.refunds.models import Refund
from billing.subscriptions.api import ReadScopeForPreview
from core.api.filters import DateTimeFilter
from core.api.viewsets import IDEMPOTENCY_PARAMETER, OrganizationScopedViewSet
from core.errors import InvalidInput

AMOUNT_HELP = "In the currency's minor units (cents for usd, yen for jpy)."


class RefundSerializer(serializers.ModelSerializer):
    order_id = serializers.UUIDField(read_only=True)
    customer_id = serializers.UUIDField(read_only=True)
    payment_id = serializers.UUIDField(read_only=True, allow_null=True)
    status = serializers.ChoiceField(
        choices=Refund.Status.choices,
        read_only=True,
        help_text="pending until the processor confirms; succeeded, failed (the refund is reversed and "
        "the amount is refundable again) or canceled.",
    )
    amount = serializers.IntegerField(
        read_only=True, help_text=f"What leaves the order: card_amount + wallet_amount. {AMOUNT_HELP}"
    )
    card_amount = serializers.IntegerField(read_only=True, help_text="Sent back to the payment method.")
    wallet_amount = serializers.IntegerField(
        read_only=True, help_text="Given back to the customer's balance (the part the order took from it)."
    )
    tax_amount = serializers.IntegerField(read_only=True, help_text="The tax included in `amount`.")
    origin = serializers.CharField(
        read_only=True, help_text="recur (made through Recur) or processor (made at the processor directly)."
    )

    class Meta:
        model = Refund
        fields = [
            "id", "status", "order_id", "customer_id", "payment_id", "currency", "amount",
            "card_amount", "wallet_amount", "tax_amount", "reason", "comment", "revoke_benefits",
            "origin", "processor_refund_id", "failure_reason",
            "created_at", "submitted_at", "succeeded_at", "failed_at",
        ]  # fmt: skip
        read_only_fields = fields


class RefundCreateSerializer(serializers.Serializer):
    order_id = serializers.UUIDField(help_text="A paid or partially refunded order of yours.")
    amount = serializers.IntegerField(
        min_value=1,
        max_value=LEDGER_AMOUNT_MAX,
        required=False,
        allow_null=True,
        help_text=f"How much to refund. {AMOUNT_HELP} Omit for everything still refundable.",
    )
    currency = serializers.CharField(
        min_length=3,
        max_length=3,
        required=False,
        allow_null=True,
        help_text="Optional check: must be the order's currency.",
    )
    reason = serializers.ChoiceField(
        choices=Refund.Reason.choices, default=Refund.Reason.REQUESTED_BY_CUSTOMER
    )
    comment = serializers.CharField(
        max_length=5000, required=False, allow_blank=True, default="", help_text="Kept on record."
    )
    revoke_benefits = serializers.BooleanField(
        default=False,
        help_text="Also take back what the order granted: its subscription ends now and the order's "
        "benefits are revoked.",
    )


class RefundPreviewSerializer(serializers.Serializer):
    """What a refund with the same body would do now."""

    order_id = serializers.UUIDField()
    currency = serializers.CharField()
    amount = serializers.IntegerField(help_text=AMOUNT_HELP)
    card_amount = serializers.IntegerField()
    wallet_amount = serializers.IntegerField()
    tax_amount = serializers.IntegerField()
    merchant_balance_change = serializers.IntegerField(
        help_text="Negative: what your balance loses (the amount without its tax; the platform fee is kept)."
    )
    refundable_before = serializers.IntegerField()
    refundable_after = serializers.IntegerField()
    order_status_after = serializers.ChoiceField(choices=Order.Status.choices)


class RefundFilter(django_filters.FilterSet):
    order_id = django_filters.UUIDFilter(field_name="order_id")
    customer_id = django_filters.UUIDFilter(field_name="customer_id")
    status = django_filters.ChoiceFilter(choices=Refund.Status.choices)
    created_after = DateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = DateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Refund
        fields = ["order_id", "customer_id", "status"]


class RefundViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationScopedViewSet):
    """Refunds of paid orders, full or partial. The card part is sent to the processor at once;
    `refund.*` events complete it."""

    scope_resource = "refunds"
    queryset = Refund.objects.all()
    serializer_class = RefundSerializer
    filterset_class = RefundFilter

    def get_permissions(self):
        if self.action == "preview":
            return [ReadScopeForPreview()]
        return super().get_permissions()

    def _body(self) -> tuple[Order, dict]:
        serializer = RefundCreateSerializer(data=self.request.data)
        serializer.is_valid(raise_exception=True)
        body = dict(serializer.validated_data)
        order = Order.objects.filter(organization=self.organization, pk=body.pop("order_id")).first()
        if order is None:
            raise InvalidInput("No order of yours has this id.", field="order_id", code="not_found")
        return order, body

    @extend_schema(
        operation_id="refunds_create",
        request=RefundCreateSerializer,
        responses={201: RefundSerializer},
        parameters=[IDEMPOTENCY_PARAMETER],
        description="Refund a paid order, fully (omit `amount`) or partly. At most what is still "
        "refundable (total less pending and succeeded refunds), even under concurrent requests; "
        "400 `amount_exceeds_refundable` above it, 409 `order_not_refundable` for an order that is "
        "not paid. The card part is sent to the processor before answering, so `status` is its "
        "answer (usually succeeded, or pending until a `refund.*` event).",
    )
    def create(self, request):
        order, body = self._body()
        amount, currency = body.pop("amount", None), body.pop("currency", None)
        refund = services.refund_request(
            order=order, amount=amount, currency=currency, actor=request.auth, **body
        )
        return Response(RefundSerializer(refund).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="refunds_preview",
        request=RefundCreateSerializer,
        responses=RefundPreviewSerializer,
        description="What `POST /v1/refunds` with the same body would do now: the card and wallet "
        "parts, the tax given back and what your balance loses. Writes nothing; needs only "
        "`refunds:read`.",
    )
    @action(detail=False, methods=["post"])
    def preview(self, request):
        order, body = self._body()
        plan = services.refund_preview(order=order, amount=body.get("amount"), currency=body.get("currency"))
        data = {
            name: getattr(plan, name)
            for name in RefundPreviewSerializer._declared_fields
            if name != "order_id"
        }
        return Response(RefundPreviewSerializer({**data, "order_id": order.pk}).data)
