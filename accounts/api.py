import django_filters
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.generics import get_object_or_404
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import services
from accounts.models import Customer, Organization, ProrationBehavior
from accounts.selectors import customers_matching, email_equals
from billing.money import LEDGER_AMOUNT_MAX, is_supported_currency
from core.api import pagination
from core.api.fields import AddressSerializer, MetadataField
from core.api.filters import DateTimeFilter
from core.api.representation import CompiledRepresentation
from core.api.viewsets import IDEMPOTENCY_PARAMETER, IdempotentMixin, OrganizationScopedViewSet

TAX_ID_TYPES = (
    "eu_vat",
    "gb_vat",
    "ch_vat",
    "no_vat",
    "au_abn",
    "ca_bn",
    "us_ein",
    "in_gst",
    "br_cnpj",
    "other",
)


class CustomerSerializer(CompiledRepresentation, serializers.ModelSerializer):
    external_id = serializers.CharField(max_length=255, required=False, allow_null=True)
    email = serializers.EmailField(max_length=254)
    name = serializers.CharField(max_length=255, required=False, allow_blank=True)
    billing_address = AddressSerializer(required=False, allow_null=True)
    tax_id = serializers.CharField(max_length=64, required=False, allow_blank=True)
    tax_id_type = serializers.ChoiceField(choices=TAX_ID_TYPES, required=False, allow_blank=True)
    metadata = MetadataField()

    class Meta:
        model = Customer
        fields = [
            "id",
            "external_id",
            "email",
            "name",
            "billing_address",
            "tax_id",
            "tax_id_type",
            "metadata",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]

    def validate_billing_address(self, value):
        return value or None

    def validate(self, attrs):
        tax_id = attrs.get("tax_id", getattr(self.instance, "tax_id", ""))
        tax_id_type = attrs.get("tax_id_type", getattr(self.instance, "tax_id_type", ""))
        if tax_id and not tax_id_type:
            raise serializers.ValidationError({"tax_id_type": ["Say which kind of tax id this is."]})
        return attrs


class CustomerUpsertSerializer(CustomerSerializer):
    """The path names the customer; the body may repeat its external_id, never change it."""

    email = serializers.EmailField(max_length=254, required=False)
    external_id = serializers.CharField(
        max_length=255, required=False, help_text="Optional; must equal the external_id in the path."
    )

    def validate_external_id(self, value):
        if value != self.context["external_id"]:
            raise serializers.ValidationError(
                "The body's external_id must match the path's; rename with PATCH /v1/customers/{id}.",
                code="external_id_mismatch",
            )
        return value


class CustomerFilter(django_filters.FilterSet):
    email = django_filters.CharFilter(method="filter_email", label="The customer's e-mail, in any case")
    external_id = django_filters.CharFilter(field_name="external_id")
    query = django_filters.CharFilter(method="filter_query", label="Search in email and name")
    created_after = DateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = DateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Customer
        fields = ["email", "external_id", "query", "created_after", "created_before"]

    def filter_email(self, queryset, name, value):
        return queryset.filter(email_equals("email", value))

    def filter_query(self, queryset, name, value):
        return customers_matching(queryset, value)


# --- the customer's wallet ----------------------------------------------------------------------

WALLET_AMOUNT_HELP = "In the currency's minor units (cents for usd, yen for jpy)."


class WalletBalanceSerializer(serializers.Serializer):
    currency = serializers.CharField()
    balance = serializers.IntegerField(
        help_text=f"What the wallet holds for the customer. {WALLET_AMOUNT_HELP}"
    )
    reserved = serializers.IntegerField(help_text="The part pending orders will take when they are paid.")
    available = serializers.IntegerField(help_text="What the next order may still use: balance - reserved.")


class WalletSerializer(serializers.Serializer):
    customer_id = serializers.UUIDField()
    balances = WalletBalanceSerializer(many=True, help_text="One per currency the wallet has held.")


class WalletAdjustmentSerializer(serializers.Serializer):
    amount = serializers.IntegerField(
        min_value=-LEDGER_AMOUNT_MAX,
        max_value=LEDGER_AMOUNT_MAX,
        help_text=f"Positive credits the customer's wallet, negative debits it (never below what is "
        f"available). Taken from (or given back to) your balance. {WALLET_AMOUNT_HELP}",
    )
    currency = serializers.CharField(max_length=3, min_length=3)
    reason = serializers.CharField(
        max_length=2000, allow_blank=True, help_text="Why; required, kept on record."
    )


class WalletTransactionSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="transaction.id")
    type = serializers.CharField(source="transaction.type", help_text="The ledger transaction's type.")
    amount = serializers.SerializerMethodField(
        help_text=f"Signed: positive credited to the wallet, negative taken from it. {WALLET_AMOUNT_HELP}"
    )
    currency = serializers.CharField()
    description = serializers.CharField(source="transaction.description")
    order_id = serializers.UUIDField(source="transaction.order_id", allow_null=True)
    created_at = serializers.DateTimeField()

    def get_amount(self, entry) -> int:
        return -entry.amount


class WalletTransactionPageSerializer(serializers.Serializer):
    next = serializers.URLField(allow_null=True, help_text=pagination.NEXT_HELP)
    previous = serializers.URLField(allow_null=True, help_text=pagination.PREVIOUS_HELP)
    next_cursor = serializers.CharField(allow_null=True, help_text=pagination.NEXT_CURSOR_HELP)
    previous_cursor = serializers.CharField(allow_null=True, help_text=pagination.PREVIOUS_CURSOR_HELP)
    results = WalletTransactionSerializer(many=True)


def _wallet_data(customer: Customer) -> dict:
    from billing.ledger.wallet import wallet_balances

    balances = [
        {"currency": b.currency, "balance": b.balance, "reserved": b.reserved, "available": b.available}
        for b in wallet_balances(customer)
    ]
    return WalletSerializer({"customer_id": customer.pk, "balances": balances}).data


@extend_schema_view(
    create=extend_schema(parameters=[IDEMPOTENCY_PARAMETER]),
    partial_update=extend_schema(parameters=[IDEMPOTENCY_PARAMETER]),
    destroy=extend_schema(parameters=[IDEMPOTENCY_PARAMETER]),
)
class CustomerViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    OrganizationScopedViewSet,
):
    """Your customers. `external_id` is your own id for a customer: upsert by it."""

    scope_resource = "customers"
    queryset = Customer.objects.all()
    serializer_class = CustomerSerializer
    filterset_class = CustomerFilter
    http_method_names = ["get", "post", "patch", "put", "delete", "head", "options"]
    paginated_actions = ("wallet_transactions",)

    def create(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        customer = services.customer_create(organization=self.organization, **serializer.validated_data)
        return Response(self.get_serializer(customer).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        customer = self.get_object()
        serializer = self.get_serializer(customer, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        customer = services.customer_update(customer=customer, **serializer.validated_data)
        return Response(self.get_serializer(customer).data)

    def destroy(self, request, pk=None):
        services.customer_delete(customer=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _by_external_id(self, external_id: str) -> Customer:
        return get_object_or_404(self.get_queryset(), external_id=external_id)

    @extend_schema(operation_id="customers_external_retrieve", responses=CustomerSerializer)
    @action(detail=False, methods=["get"], url_path=r"external/(?P<external_id>[^/]+)")
    def external(self, request, external_id: str):
        return Response(self.get_serializer(self._by_external_id(external_id)).data)

    @extend_schema(
        operation_id="customers_external_upsert",
        request=CustomerUpsertSerializer,
        responses={200: CustomerSerializer, 201: CustomerSerializer},
        parameters=[IDEMPOTENCY_PARAMETER],
        description="Create the customer with this external_id, or update it if it exists.",
    )
    @external.mapping.put
    def external_upsert(self, request, external_id: str):
        if len(external_id) > 255:
            raise serializers.ValidationError({"external_id": ["At most 255 characters."]})
        serializer = CustomerUpsertSerializer(
            data=request.data, partial=True, context={"external_id": external_id}
        )
        serializer.is_valid(raise_exception=True)
        fields = {k: v for k, v in serializer.validated_data.items() if k != "external_id"}
        customer, created = services.customer_upsert(
            organization=self.organization, external_id=external_id, **fields
        )
        return Response(
            self.get_serializer(customer).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )

    @extend_schema(
        operation_id="customers_wallet_retrieve",
        responses=WalletSerializer,
        description="The customer's wallet: per currency, its balance, what pending orders reserve and "
        "what is available. The wallet pays the customer's next subscription orders.",
    )
    @action(detail=True, methods=["get"])
    def wallet(self, request, pk=None):
        return Response(_wallet_data(self.get_object()))

    @extend_schema(
        operation_id="customers_wallet_adjust",
        request=WalletAdjustmentSerializer,
        responses={201: WalletSerializer},
        parameters=[IDEMPOTENCY_PARAMETER],
        description="Credit (positive `amount`) or debit (negative) the customer's wallet from your "
        "balance, with a reason. A debit beyond the available balance is refused. Answers the wallet.",
    )
    @action(detail=True, methods=["post"], url_path="wallet/adjustments")
    def wallet_adjust(self, request, pk=None):
        from billing.ledger.wallet import wallet_adjust

        customer = self.get_object()
        serializer = WalletAdjustmentSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        wallet_adjust(customer=customer, actor=request.auth, **serializer.validated_data)
        return Response(_wallet_data(customer), status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="customers_wallet_transactions",
        responses=WalletTransactionPageSerializer,
        parameters=pagination.PAGE_PARAMETERS,
        description="The ledger transactions that moved the customer's wallet, newest first: credits "
        "(downgrades, revocations, adjustments, refunds to the balance) and what orders took from it.",
    )
    @action(detail=True, methods=["get"], url_path="wallet/transactions")
    def wallet_transactions(self, request, pk=None):
        from billing.ledger.wallet import wallet_entries

        page = self.paginate_queryset(wallet_entries(self.get_object()))
        return self.get_paginated_response(WalletTransactionSerializer(page, many=True).data)

    @extend_schema(
        operation_id="customers_external_destroy", responses={204: None}, parameters=[IDEMPOTENCY_PARAMETER]
    )
    @external.mapping.delete
    def external_destroy(self, request, external_id: str):
        services.customer_delete(customer=self._by_external_id(external_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class OrganizationSerializer(CompiledRepresentation, serializers.ModelSerializer):
    default_currency = serializers.CharField(max_length=3, min_length=3)
    dunning_schedule = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=60), min_length=1, max_length=10
    )
    proration_default = serializers.ChoiceField(choices=ProrationBehavior.choices)

    class Meta:
        model = Organization
        fields = [
            "id",
            "name",
            "slug",
            "email",
            "default_currency",
            "invoice_prefix",
            "platform_fee_bps",
            "platform_fee_fixed",
            "payout_hold_days",
            "dunning_schedule",
            "benefit_grace_days",
            "proration_default",
            "dispute_fee",
            "dispute_revokes_access",
            "dispute_won_restores_access",
            "created_at",
        ]
        read_only_fields = [
            "id",
            "slug",
            "created_at",
            "platform_fee_bps",
            "platform_fee_fixed",
            "dispute_fee",
        ]
        extra_kwargs = {
            "payout_hold_days": {"min_value": 0, "max_value": 90},
            "benefit_grace_days": {"min_value": 0, "max_value": 60},
        }

    def validate_default_currency(self, value: str) -> str:
        value = value.lower()
        if not is_supported_currency(value):
            raise serializers.ValidationError("Unsupported currency.", code="invalid_currency")
        return value


class OrganizationView(IdempotentMixin, APIView):
    """The organization the access token belongs to, and its billing settings."""

    scope_resource = "organization"
    serializer_class = OrganizationSerializer

    def get(self, request):
        return Response(OrganizationSerializer(request.auth.organization).data)

    @extend_schema(
        request=OrganizationSerializer, responses=OrganizationSerializer, parameters=[IDEMPOTENCY_PARAMETER]
    )
    def patch(self, request):
        serializer = OrganizationSerializer(request.auth.organization, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        organization = services.organization_update(
            organization=request.auth.organization, **serializer.validated_data
        )
        return Response(OrganizationSerializer(organization).data)
