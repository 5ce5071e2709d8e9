import django_filters
from django.db.models import Q
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.generics import get_object_or_404
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import services
from accounts.models import Customer, Organization, ProrationBehavior
from billing.money import is_supported_currency
from core.api.fields import AddressSerializer, MetadataField
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


class CustomerSerializer(serializers.ModelSerializer):
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
    email = serializers.EmailField(max_length=254, required=False)

    class Meta(CustomerSerializer.Meta):
        read_only_fields = [*CustomerSerializer.Meta.read_only_fields, "external_id"]


class CustomerFilter(django_filters.FilterSet):
    email = django_filters.CharFilter(field_name="email", lookup_expr="iexact")
    external_id = django_filters.CharFilter(field_name="external_id")
    query = django_filters.CharFilter(method="filter_query", label="Search in email and name")
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Customer
        fields = ["email", "external_id", "query", "created_after", "created_before"]

    def filter_query(self, queryset, name, value):
        return queryset.filter(Q(email__icontains=value) | Q(name__icontains=value))


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
        serializer = CustomerUpsertSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        customer, created = services.customer_upsert(
            organization=self.organization, external_id=external_id, **serializer.validated_data
        )
        return Response(
            self.get_serializer(customer).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )

    @extend_schema(
        operation_id="customers_external_destroy", responses={204: None}, parameters=[IDEMPOTENCY_PARAMETER]
    )
    @external.mapping.delete
    def external_destroy(self, request, external_id: str):
        services.customer_delete(customer=self._by_external_id(external_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class OrganizationSerializer(serializers.ModelSerializer):
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
