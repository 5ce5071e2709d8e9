import django_filters
from django.conf import settings
from django.urls import reverse
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle

from billing.checkout import services
from billing.checkout.models import Checkout
from billing.money import LEDGER_AMOUNT_MAX
from core.api.fields import AddressSerializer, MetadataField, OptionalURLField
from core.api.filters import refuse_unknown_parameters
from core.api.guesses import guess_failed, guesses_check
from core.api.viewsets import IDEMPOTENCY_PARAMETER, OrganizationScopedViewSet


class CheckoutSerializer(serializers.ModelSerializer):
    product_id = serializers.UUIDField(read_only=True)
    price_id = serializers.UUIDField(read_only=True)
    customer_id = serializers.UUIDField(read_only=True, allow_null=True)
    discount_id = serializers.UUIDField(read_only=True, allow_null=True)
    amount = serializers.IntegerField(source="custom_amount", read_only=True, allow_null=True)
    amount_due = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()
    order_id = serializers.SerializerMethodField()
    subscription_id = serializers.SerializerMethodField()
    billing_address = AddressSerializer(read_only=True, allow_null=True)
    success_url = OptionalURLField(read_only=True)

    class Meta:
        model = Checkout
        fields = [
            "id", "status", "client_secret", "url", "expires_at",
            "product_id", "price_id", "currency", "seats", "amount", "discount_id", "trial_days",
            "customer_id", "customer_email", "customer_name", "billing_address", "customer_tax_id", "is_business",
            "subtotal", "discount_amount", "net", "tax", "total", "amount_due",
            "tax_rate_bps", "tax_inclusive", "reverse_charge",
            "success_url", "metadata", "payment_error", "order_id", "subscription_id", "created_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_amount_due(self, checkout: Checkout) -> int:
        return services.amount_due_now(checkout)

    def get_url(self, checkout: Checkout) -> str:
        return settings.RECUR_PUBLIC_URL.rstrip("/") + reverse("checkout-page", args=[checkout.client_secret])

    def get_order_id(self, checkout: Checkout) -> str | None:
        order = (
            services.order_for_checkout(checkout) if checkout.status == Checkout.Status.SUCCEEDED else None
        )
        return str(order.pk) if order else None

    def get_subscription_id(self, checkout: Checkout) -> str | None:
        subscription = getattr(checkout, "subscription", None) if checkout.status == "succeeded" else None
        return str(subscription.pk) if subscription else None


class PublicCheckoutSerializer(CheckoutSerializer):
    """What the hosted page (and the customer's browser) may see: no metadata or ids of the merchant's."""

    product_name = serializers.CharField(source="product.name", read_only=True)
    organization_name = serializers.CharField(source="organization.name", read_only=True)
    discount_code = serializers.CharField(
        source="discount.code", read_only=True, allow_null=True, default=None
    )

    class Meta(CheckoutSerializer.Meta):
        fields = [
            f for f in CheckoutSerializer.Meta.fields if f not in ("metadata", "customer_id", "discount_id")
        ] + ["product_name", "organization_name", "discount_code"]
        read_only_fields = fields


class CustomerFieldsSerializer(serializers.Serializer):
    customer_email = serializers.EmailField(max_length=254, required=False)
    customer_name = serializers.CharField(max_length=255, required=False, allow_blank=True)
    billing_address = AddressSerializer(required=False, allow_null=True)
    customer_tax_id = serializers.CharField(max_length=64, required=False, allow_blank=True)
    is_business = serializers.BooleanField(required=False)


class CheckoutCreateSerializer(CustomerFieldsSerializer):
    product_id = serializers.UUIDField()
    price_id = serializers.UUIDField(required=False, allow_null=True)
    currency = serializers.CharField(min_length=3, max_length=3, required=False)
    customer_id = serializers.UUIDField(required=False, allow_null=True)
    discount_code = serializers.CharField(max_length=64, required=False, allow_blank=True)
    seats = serializers.IntegerField(min_value=1, max_value=1_000_000, required=False, allow_null=True)
    amount = serializers.IntegerField(
        min_value=0, max_value=LEDGER_AMOUNT_MAX, required=False, allow_null=True
    )
    trial_days = serializers.IntegerField(min_value=1, max_value=730, required=False, allow_null=True)
    # Omit it for Recur's thank-you page; an empty string is not a URL.
    success_url = serializers.URLField(max_length=2000, required=False)
    metadata = MetadataField()


class CheckoutUpdateSerializer(CustomerFieldsSerializer):
    discount_code = serializers.CharField(max_length=64, required=False, allow_blank=True)
    seats = serializers.IntegerField(min_value=1, max_value=1_000_000, required=False)
    amount = serializers.IntegerField(min_value=0, max_value=LEDGER_AMOUNT_MAX, required=False)


class CheckoutConfirmSerializer(CustomerFieldsSerializer):
    payment_method_id = serializers.CharField(max_length=255, required=False, allow_blank=True)


class CheckoutFilter(django_filters.FilterSet):
    # What ``filterset_fields`` gave, as a class: DRF's backend built that one on every request.
    class Meta:
        model = Checkout
        fields = ["status", "customer"]


@extend_schema_view(
    create=extend_schema(request=CheckoutCreateSerializer, parameters=[IDEMPOTENCY_PARAMETER])
)
class CheckoutViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationScopedViewSet):
    """Checkout sessions. Send the customer to `url`, or build your own page on the client endpoints."""

    scope_resource = "checkouts"
    queryset = Checkout.objects.select_related("discount")
    serializer_class = CheckoutSerializer
    filterset_class = CheckoutFilter

    def create(self, request):
        data = CheckoutCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        checkout = services.checkout_create(organization=self.organization, **data.validated_data)
        return Response(CheckoutSerializer(checkout).data, status=status.HTTP_201_CREATED)


class CheckoutClientThrottle(AnonRateThrottle):
    """The public endpoints are reached by browsers: limit per client address."""

    def get_rate(self) -> str:
        return f"{settings.RECUR_API_RATE_LIMIT}/min"


@extend_schema(auth=[])
class CheckoutClientViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The customer's side of a checkout, authorised by its client secret alone."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [CheckoutClientThrottle]
    queryset = Checkout.objects.select_related("product", "organization", "discount")
    serializer_class = PublicCheckoutSerializer
    lookup_field = "client_secret"
    lookup_value_regex = "[A-Za-z0-9_-]+"

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if request.method in ("GET", "HEAD"):  # a read takes no parameters: a stray one is a 400
            refuse_unknown_parameters(request, ())

    def get_object(self) -> Checkout:
        guesses_check(self.request)
        checkout = self.queryset.filter(client_secret=self.kwargs["client_secret"]).first()
        if checkout is None:  # a wrong client secret is a failed guess, like a wrong token
            guess_failed(self.request)
            raise NotFound()
        return checkout

    @extend_schema(request=CheckoutUpdateSerializer, responses=PublicCheckoutSerializer)
    def partial_update(self, request, client_secret: str):
        data = CheckoutUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        checkout = services.checkout_update(checkout=self.get_object(), **data.validated_data)
        return Response(PublicCheckoutSerializer(checkout).data)

    @extend_schema(request=CheckoutConfirmSerializer, responses=PublicCheckoutSerializer)
    @action(detail=True, methods=["post"])
    def confirm(self, request, client_secret: str):
        data = CheckoutConfirmSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        checkout = services.checkout_confirm(checkout=self.get_object(), **data.validated_data)
        return Response(PublicCheckoutSerializer(checkout).data)
