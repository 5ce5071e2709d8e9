"""/v1/products and /v1/discounts.

Serializers check shapes (types, lengths, enums) and report field errors; every rule
(one price per currency, what a sold product may still change, discount limits) lives in
``billing.catalog.services``, which the backoffice calls too.
"""

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Prefetch, Q
from django.db.models.functions import Lower
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from billing.catalog import selectors, services
from billing.catalog.models import Discount, Price, Product, RecurringInterval
from billing.money import is_supported_currency
from core.api.fields import MetadataField
from core.api.viewsets import IDEMPOTENCY_PARAMETER, OrganizationScopedViewSet

AMOUNT_HELP = "In the currency's minor units (cents for usd, yen for jpy)."


def amount_field(help_text: str, **kwargs) -> serializers.IntegerField:
    kwargs.setdefault("required", False)
    kwargs.setdefault("allow_null", True)
    return serializers.IntegerField(
        min_value=0, max_value=services.MAX_PRICE_AMOUNT, help_text=f"{help_text} {AMOUNT_HELP}", **kwargs
    )


# --- prices and products ---------------------------------------------------------------


class SeatTierSerializer(serializers.Serializer):
    up_to = serializers.IntegerField(
        min_value=1,
        max_value=services.MAX_SEATS,
        required=False,
        allow_null=True,
        default=None,
        help_text="The last seat of this tier; null for the last tier, which has no end.",
    )
    unit_amount = amount_field("Price of each seat in this tier.", required=True, allow_null=False)
    flat_amount = amount_field("Added once when this tier is reached.", allow_null=False, default=0)


class PriceSerializer(serializers.Serializer):
    """A product's price in one currency. Read, and written inside a product's `prices`."""

    id = serializers.UUIDField(
        required=False,
        help_text="When updating a product: an existing active price. Alone, it keeps that price; "
        "with other fields, the price is archived and replaced by one with those values.",
    )
    currency = serializers.CharField(
        min_length=3, max_length=3, required=False, help_text="Lowercase ISO 4217 code, e.g. usd."
    )
    type = serializers.ChoiceField(
        choices=Price.Type.choices,
        required=False,
        help_text="fixed: `amount`. custom (pay what you want): `minimum_amount` (0 allows free), "
        "optional `maximum_amount` and `preset_amount`. free: no amounts. seat_based: "
        "`seat_tiers`, `seat_tier_mode`, `minimum_seats`, `maximum_seats`.",
    )
    amount = amount_field("Fixed price.")
    minimum_amount = amount_field("Custom price: the least a customer may pay.")
    maximum_amount = amount_field("Custom price: the most a customer may pay (null: no maximum).")
    preset_amount = amount_field("Custom price: the amount suggested at checkout.")
    seat_tiers = SeatTierSerializer(
        many=True,
        required=False,
        max_length=services.MAX_SEAT_TIERS,
        help_text="Seat-based price: tiers in ascending `up_to`, the last one with `up_to` null.",
    )
    seat_tier_mode = serializers.ChoiceField(
        choices=Price.TierMode.choices,
        required=False,
        allow_null=True,
        allow_blank=True,
        help_text="volume: every seat at the tier the total falls in. graduated: each tier's seats "
        "at that tier's price.",
    )
    minimum_seats = serializers.IntegerField(min_value=1, max_value=services.MAX_SEATS, required=False)
    maximum_seats = serializers.IntegerField(
        min_value=1, max_value=services.MAX_SEATS, required=False, allow_null=True
    )
    is_archived = serializers.BooleanField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)

    def validate_currency(self, value: str) -> str:
        value = value.lower()
        if not is_supported_currency(value):
            raise serializers.ValidationError("Unsupported currency.", code="unsupported_currency")
        return value

    def validate(self, attrs):
        if "id" not in attrs:
            missing = {f: ["This field is required."] for f in ("currency", "type") if f not in attrs}
            if missing:
                raise serializers.ValidationError(missing, code="required")
        if attrs.get("seat_tier_mode") is None and "seat_tier_mode" in attrs:
            attrs["seat_tier_mode"] = ""
        return attrs

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["seat_tier_mode"] = data.get("seat_tier_mode") or None
        return data


class ProductSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    name = serializers.CharField(max_length=services.NAME_MAX)
    description = serializers.CharField(max_length=services.DESCRIPTION_MAX, required=False, allow_blank=True)
    recurring_interval = serializers.ChoiceField(
        choices=RecurringInterval.choices,
        required=False,
        allow_null=True,
        help_text="Bill every `recurring_interval_count` of these; null for a one-time product.",
    )
    recurring_interval_count = serializers.IntegerField(
        min_value=1, max_value=365, required=False, help_text="At most three years in total."
    )
    is_recurring = serializers.BooleanField(read_only=True)
    is_archived = serializers.BooleanField(read_only=True)
    metadata = MetadataField()
    prices = PriceSerializer(
        many=True,
        source="active_prices",
        min_length=1,
        max_length=services.MAX_PRICES,
        help_text="The active prices, at most one per currency.",
    )
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)

    def to_representation(self, instance):
        instance.active_prices = selectors.product_active_prices(instance)
        return super().to_representation(instance)


class ProductUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=services.NAME_MAX, required=False)
    description = serializers.CharField(max_length=services.DESCRIPTION_MAX, required=False, allow_blank=True)
    recurring_interval = serializers.ChoiceField(
        choices=RecurringInterval.choices,
        required=False,
        allow_null=True,
        help_text="Cannot change once the product has been sold.",
    )
    recurring_interval_count = serializers.IntegerField(min_value=1, max_value=365, required=False)
    metadata = MetadataField()
    prices = PriceSerializer(
        many=True,
        required=False,
        min_length=1,
        max_length=services.MAX_PRICES,
        help_text='The complete new list of active prices. `{"id": ...}` keeps a price; an id with '
        "changed fields replaces it; an entry without id adds one; active prices left out are "
        "archived. Prices are never edited in place.",
    )


class StrictBooleanField(forms.NullBooleanField):
    """``true`` or ``false`` (also ``1``/``0``); anything else is a 400, not silently ignored."""

    widget = forms.TextInput

    def to_python(self, value):
        if value in (None, ""):
            return None
        text = str(value).strip().lower()
        if text in ("true", "1"):
            return True
        if text in ("false", "0"):
            return False
        raise ValidationError("Use true or false.", code="invalid")


class StrictBooleanFilter(django_filters.BooleanFilter):
    field_class = StrictBooleanField


def boolean_filter(**kwargs) -> StrictBooleanFilter:
    return StrictBooleanFilter(**kwargs)


class ProductFilter(django_filters.FilterSet):
    is_archived = boolean_filter(field_name="is_archived")
    is_recurring = boolean_filter(method="filter_is_recurring", label="Recurring or one-time")
    query = django_filters.CharFilter(method="filter_query", label="Search in the name", max_length=200)

    class Meta:
        model = Product
        fields = ["is_archived", "is_recurring", "query"]

    def filter_is_recurring(self, queryset, name, value):
        return queryset.filter(recurring_interval__isnull=not value)

    def filter_query(self, queryset, name, value):
        return queryset.filter(name__icontains=value)


def _product_args(validated: dict) -> dict:
    data = dict(validated)
    if "active_prices" in data:
        data["prices"] = data.pop("active_prices")
    if "prices" in data:
        data["prices"] = [
            {
                **price,
                **({"seat_tiers": [dict(t) for t in price["seat_tiers"]]} if "seat_tiers" in price else {}),
            }
            for price in data["prices"]
        ]
    return data


WRITE = {"parameters": [IDEMPOTENCY_PARAMETER]}


@extend_schema_view(
    list=extend_schema(description="Your products, newest first."),
    create=extend_schema(
        request=ProductSerializer,
        responses={201: ProductSerializer},
        description="Create a product with its prices (at least one, at most one per currency).",
        **WRITE,
    ),
    partial_update=extend_schema(
        request=ProductUpdateSerializer,
        responses=ProductSerializer,
        description="Change a product. A sold product keeps its billing interval; changed prices "
        "are archived and replaced.",
        **WRITE,
    ),
    destroy=extend_schema(
        responses={204: None},
        description="Delete a product that was never sold; a sold one answers 409 `product_sold`: "
        "archive it instead.",
        **WRITE,
    ),
)
class ProductViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationScopedViewSet):
    """What you sell: one-time or recurring products and their prices per currency."""

    scope_resource = "products"
    queryset = Product.objects.all()
    serializer_class = ProductSerializer
    filterset_class = ProductFilter
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        return selectors.products_with_prices(super().get_queryset())

    def _fresh(self, product: Product) -> Product:
        return self.get_queryset().get(pk=product.pk)

    def create(self, request):
        serializer = ProductSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        product = services.product_create(
            organization=self.organization, **_product_args(serializer.validated_data)
        )
        return Response(ProductSerializer(product).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        product = self.get_object()
        serializer = ProductUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        product = services.product_update(product=product, **_product_args(serializer.validated_data))
        return Response(ProductSerializer(self._fresh(product)).data)

    def destroy(self, request, pk=None):
        services.product_delete(product=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        request=None,
        responses=ProductSerializer,
        description="Hide the product from new checkouts; subscriptions to it keep renewing.",
        **WRITE,
    )
    @action(detail=True, methods=["post"])
    def archive(self, request, pk=None):
        product = services.product_archive(product=self.get_object())
        return Response(ProductSerializer(self._fresh(product)).data)

    @extend_schema(request=None, responses=ProductSerializer, description="Sell the product again.", **WRITE)
    @action(detail=True, methods=["post"])
    def unarchive(self, request, pk=None):
        product = services.product_unarchive(product=self.get_object())
        return Response(ProductSerializer(self._fresh(product)).data)


# --- discounts ---------------------------------------------------------------------------


@extend_schema_field({"type": "array", "items": {"type": "string", "format": "uuid"}})
class ProductIdsField(serializers.ListField):
    """Writes a list of product ids; reads the discount's products."""

    def __init__(self, **kwargs):
        kwargs.setdefault("child", serializers.UUIDField())
        kwargs.setdefault("max_length", 100)
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def get_attribute(self, instance):
        return [product.pk for product in instance.products.all()]


class DiscountSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    name = serializers.CharField(max_length=services.NAME_MAX)
    code = serializers.CharField(
        max_length=64,
        required=False,
        allow_null=True,
        allow_blank=True,
        help_text="What customers type at checkout (3 to 64 letters, digits, - or _; case-insensitive, "
        "unique in your organization). Null for a discount applied only by id.",
    )
    type = serializers.ChoiceField(choices=Discount.Type.choices)
    basis_points = serializers.IntegerField(
        min_value=1,
        max_value=10_000,
        required=False,
        allow_null=True,
        help_text="Percentage discounts: 10000 = 100%, 2500 = 25%.",
    )
    amounts = serializers.DictField(
        child=serializers.IntegerField(min_value=1, max_value=services.MAX_PRICE_AMOUNT),
        required=False,
        allow_null=True,
        help_text='Fixed discounts: the amount off per currency, e.g. {"usd": 500}. ' + AMOUNT_HELP,
    )
    duration = serializers.ChoiceField(
        choices=Discount.Duration.choices,
        required=False,
        help_text="For subscriptions: the first period only, `duration_in_months`, or every period.",
    )
    duration_in_months = serializers.IntegerField(
        min_value=1, max_value=services.MAX_DISCOUNT_MONTHS, required=False, allow_null=True
    )
    starts_at = serializers.DateTimeField(required=False, allow_null=True)
    ends_at = serializers.DateTimeField(
        required=False, allow_null=True, help_text="The first moment the code no longer works."
    )
    max_redemptions = serializers.IntegerField(
        min_value=1, max_value=services.MAX_REDEMPTIONS, required=False, allow_null=True
    )
    max_redemptions_per_customer = serializers.IntegerField(
        min_value=1, max_value=services.MAX_REDEMPTIONS, required=False, allow_null=True
    )
    redemptions_count = serializers.SerializerMethodField(
        help_text="Uses so far: redeemed, plus reserved by checkouts being paid."
    )
    product_ids = ProductIdsField(help_text="Restrict the discount to these products; empty for all.")
    is_archived = serializers.BooleanField(read_only=True)
    metadata = MetadataField()
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)

    def get_redemptions_count(self, discount: Discount) -> int:
        count = getattr(discount, "redemptions_count", None)
        return count if count is not None else selectors.discount_redemptions_count(discount)


class DiscountUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=services.NAME_MAX, required=False)
    code = serializers.CharField(max_length=64, required=False, allow_null=True, allow_blank=True)
    starts_at = serializers.DateTimeField(required=False, allow_null=True)
    ends_at = serializers.DateTimeField(required=False, allow_null=True)
    max_redemptions = serializers.IntegerField(
        min_value=1,
        max_value=services.MAX_REDEMPTIONS,
        required=False,
        allow_null=True,
        help_text="Not below the uses so far.",
    )
    max_redemptions_per_customer = serializers.IntegerField(
        min_value=1, max_value=services.MAX_REDEMPTIONS, required=False, allow_null=True
    )
    product_ids = ProductIdsField()
    metadata = MetadataField()

    def to_internal_value(self, data):
        if isinstance(data, dict):
            fixed = [f for f in services.DISCOUNT_IMMUTABLE_FIELDS if f in data]
            if fixed:
                raise serializers.ValidationError(
                    {
                        f: [
                            serializers.ErrorDetail(
                                "Cannot change once a discount exists; create a new discount.",
                                code="immutable",
                            )
                        ]
                        for f in fixed
                    }
                )
        return super().to_internal_value(data)


class DiscountFilter(django_filters.FilterSet):
    code = django_filters.CharFilter(
        field_name="code", method="filter_code", max_length=64, label="The exact code, in any case"
    )
    is_archived = boolean_filter(field_name="is_archived")
    query = django_filters.CharFilter(method="filter_query", label="Search in name and code", max_length=200)

    class Meta:
        model = Discount
        fields = ["code", "is_archived", "query"]

    def filter_code(self, queryset, name, value):
        # LOWER(code) = ..., which the per-organization unique index on LOWER(code) serves.
        return queryset.annotate(code_lower=Lower("code")).filter(code_lower=value.strip().lower())

    def filter_query(self, queryset, name, value):
        return queryset.filter(Q(name__icontains=value) | Q(code__icontains=value))


@extend_schema_view(
    list=extend_schema(description="Your discounts, newest first."),
    create=extend_schema(
        request=DiscountSerializer,
        responses={201: DiscountSerializer},
        description="Create a percentage or fixed discount, optionally with a code customers type.",
        **WRITE,
    ),
    partial_update=extend_schema(
        request=DiscountUpdateSerializer,
        responses=DiscountSerializer,
        description="Change the name, code, validity window, limits, products or metadata. "
        "Type, amounts and duration cannot change.",
        **WRITE,
    ),
    destroy=extend_schema(
        responses={204: None},
        description="Delete a discount nobody used; a used one answers 409: archive it instead.",
        **WRITE,
    ),
)
class DiscountViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationScopedViewSet):
    """Discounts and the codes customers type at checkout."""

    scope_resource = "discounts"
    queryset = Discount.objects.all()
    serializer_class = DiscountSerializer
    filterset_class = DiscountFilter
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        return selectors.discounts_with_usage(super().get_queryset()).prefetch_related(
            Prefetch("products", queryset=Product.objects.only("id"))
        )

    def _fresh(self, discount: Discount) -> Discount:
        return self.get_queryset().get(pk=discount.pk)

    def create(self, request):
        serializer = DiscountSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        if data.get("amounts") is None:
            data.pop("amounts", None)
        discount = services.discount_create(organization=self.organization, **data)
        return Response(DiscountSerializer(self._fresh(discount)).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        discount = self.get_object()
        serializer = DiscountUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        discount = services.discount_update(discount=discount, **serializer.validated_data)
        return Response(DiscountSerializer(self._fresh(discount)).data)

    def destroy(self, request, pk=None):
        services.discount_delete(discount=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        request=None, responses=DiscountSerializer, description="Stop new uses of the discount.", **WRITE
    )
    @action(detail=True, methods=["post"])
    def archive(self, request, pk=None):
        discount = services.discount_archive(discount=self.get_object())
        return Response(DiscountSerializer(self._fresh(discount)).data)

    @extend_schema(request=None, responses=DiscountSerializer, description="Allow new uses again.", **WRITE)
    @action(detail=True, methods=["post"])
    def unarchive(self, request, pk=None):
        discount = services.discount_unarchive(discount=self.get_object())
        return Response(DiscountSerializer(self._fresh(discount)).data)
