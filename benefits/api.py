"""/v1/benefits, /v1/benefit-types, /v1/products/{id}/benefits and /v1/benefit-grants.

Serializers check shapes (and a type's settings through its strategy's own serializer, so
every bad setting is named at once as ``properties.<name>``); every rule lives in
``benefits.services``, which the backoffice calls too. Grant actions (retry, revoke, grant)
are an operator's, made with a token: the services audit them with the token as actor.
"""

import json
from functools import cache

import django_filters
from django.db.models import Exists, OuterRef, Prefetch
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ComponentRegistry
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from benefits import services
from benefits.models import Benefit, BenefitGrant, ProductBenefit
from benefits.serializers import BenefitGrantSerializer, BenefitSerializer
from benefits.strategies import REGISTRY, benefit_types, strategy_for
from billing.catalog.api import boolean_filter
from billing.catalog.models import Product
from core.api.fields import MetadataField
from core.api.viewsets import IDEMPOTENCY_PARAMETER, IdempotentMixin, OrganizationScopedViewSet
from core.errors import InvalidInput

WRITE = {"parameters": [IDEMPOTENCY_PARAMETER]}
PROPERTIES_HELP = (
    "The type's settings; `GET /v1/benefit-types` gives each type's schema. An invalid setting "
    "is a 400 naming it (`properties.key`)."
)

TYPE_HELP = "The benefit's type (`GET /v1/benefit-types` lists them); it cannot change later."


def _check_properties(type_name: str | None, properties, organization) -> None:
    """Every invalid setting at once, as ``properties.<name>`` (the service checks again)."""
    if type_name is None or type_name not in REGISTRY.strategies:
        return
    checked = strategy_for(type_name).properties_serializer(
        data=properties or {}, context={"organization": organization}
    )
    if not checked.is_valid():
        raise serializers.ValidationError({"properties": checked.errors})


# --- benefits ---------------------------------------------------------------------------


class BenefitCreateSerializer(serializers.Serializer):
    type = serializers.CharField(max_length=40, help_text=TYPE_HELP)
    description = serializers.CharField(
        max_length=services.DESCRIPTION_MAX, help_text="What the customer sees, e.g. 'Pro license key'."
    )
    properties = serializers.DictField(required=False, default=dict, help_text=PROPERTIES_HELP)
    metadata = MetadataField()

    def validate(self, attrs):
        _check_properties(attrs.get("type"), attrs.get("properties"), self.context.get("organization"))
        return attrs


class BenefitUpdateSerializer(serializers.Serializer):
    description = serializers.CharField(max_length=services.DESCRIPTION_MAX, required=False)
    properties = serializers.DictField(
        required=False,
        help_text="The complete new settings (validated as at creation); the holders' grants "
        "apply them (`benefit_grant.updated`).",
    )
    metadata = MetadataField()

    def to_internal_value(self, data):
        if isinstance(data, dict) and "type" in data:
            raise serializers.ValidationError(
                {
                    "type": [
                        serializers.ErrorDetail(
                            "A benefit's type cannot change; create another benefit.", code="immutable"
                        )
                    ]
                }
            )
        return super().to_internal_value(data)

    def validate(self, attrs):
        if "properties" in attrs:
            benefit = self.context["benefit"]
            _check_properties(benefit.type, attrs["properties"], benefit.organization)
        return attrs


class BenefitFilter(django_filters.FilterSet):
    type = django_filters.ChoiceFilter(choices=lambda: [(t, t) for t in benefit_types()])
    product_id = django_filters.UUIDFilter(method="filter_product", label="Benefits this product unlocks")

    class Meta:
        model = Benefit
        fields = ["type", "product_id"]

    def filter_product(self, queryset, name, value):
        links = ProductBenefit.objects.filter(
            benefit=OuterRef("pk"), product_id=value, removed_at__isnull=True
        )
        return queryset.filter(Exists(links))


def live_benefits(queryset):
    return queryset.filter(deleted_at__isnull=True).prefetch_related(
        Prefetch(
            "product_benefits", ProductBenefit.objects.only("id", "benefit_id", "product_id", "removed_at")
        )
    )


@extend_schema_view(
    list=extend_schema(description="Your benefits (not deleted), newest first."),
    retrieve=extend_schema(description="One benefit; a deleted one is a 404."),
    create=extend_schema(
        request=BenefitCreateSerializer,
        responses={201: BenefitSerializer},
        description="Create a benefit of a type, with its settings. A type the platform has not "
        "configured (an integration without credentials) is a 400 `not_configured`.",
        **WRITE,
    ),
    partial_update=extend_schema(
        request=BenefitUpdateSerializer,
        responses=BenefitSerializer,
        description="Change the description, settings or metadata; the type stays.",
        **WRITE,
    ),
    destroy=extend_schema(
        responses={204: None},
        description="Delete the benefit: products stop unlocking it and every grant of it is "
        "revoked (`benefit_grant.revoked`, in batches). The grants stay listed.",
        **WRITE,
    ),
)
class BenefitViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationScopedViewSet):
    """What your products unlock: license keys, files, feature flags, credits, repository access."""

    scope_resource = "benefits"
    queryset = Benefit.objects.all()
    serializer_class = BenefitSerializer
    filterset_class = BenefitFilter
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        return live_benefits(super().get_queryset())

    def _fresh(self, benefit: Benefit) -> Benefit:
        return self.get_queryset().get(pk=benefit.pk)

    def create(self, request):
        serializer = BenefitCreateSerializer(data=request.data, context={"organization": self.organization})
        serializer.is_valid(raise_exception=True)
        benefit = services.benefit_create(
            organization=self.organization, actor=request.auth, **serializer.validated_data
        )
        return Response(BenefitSerializer(self._fresh(benefit)).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        benefit = self.get_object()
        serializer = BenefitUpdateSerializer(data=request.data, context={"benefit": benefit})
        serializer.is_valid(raise_exception=True)
        benefit = services.benefit_update(benefit=benefit, actor=request.auth, **serializer.validated_data)
        return Response(BenefitSerializer(self._fresh(benefit)).data)

    def destroy(self, request, pk=None):
        services.benefit_delete(benefit=self.get_object(), actor=request.auth)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- benefit types ------------------------------------------------------------------------


class BenefitTypeSerializer(serializers.Serializer):
    type = serializers.CharField()
    label = serializers.CharField()
    description = serializers.CharField()
    configured = serializers.BooleanField(help_text="False: benefits of this type cannot be created here.")
    not_configured_reason = serializers.CharField(
        help_text="Why not, when `configured` is false; else empty."
    )
    properties_schema = serializers.DictField(
        help_text="A JSON Schema of the type's `properties`, as `POST /v1/benefits` validates them."
    )


class BenefitTypeListSerializer(serializers.Serializer):
    types = BenefitTypeSerializer(many=True)


class _SchemaView(APIView):
    pass


@cache
def properties_schema(type_name: str) -> dict:
    """The type's properties serializer as a JSON Schema, drawn by drf-spectacular (the same
    mapping as the OpenAPI document's); nested components land in ``$defs``."""
    view = _SchemaView()
    view.request, view.format_kwarg = None, None
    auto = AutoSchema()
    auto.registry, auto.method, auto.path, auto.view = ComponentRegistry(), "POST", "/", view
    schema = auto._map_serializer(strategy_for(type_name).properties_serializer(), "request")
    defs = {component.name: component.schema for component in auto.registry._components.values()}
    if defs:
        schema = {**schema, "$defs": defs}
    return json.loads(json.dumps(schema).replace("#/components/schemas/", "#/$defs/"))


class BenefitTypeListView(IdempotentMixin, APIView):
    """The benefit types this platform offers."""

    scope_resource = "benefits"

    @extend_schema(
        operation_id="benefit_types_list",
        responses=BenefitTypeListSerializer,
        description="Every benefit type: its label, what it does, whether the platform is configured "
        "for it (integrations need credentials) and a JSON Schema of its `properties`.",
    )
    def get(self, request):
        types = []
        for name in benefit_types():
            strategy = strategy_for(name)
            configured, why = strategy.is_configured()
            types.append(
                {
                    "type": name,
                    "label": strategy.label,
                    "description": strategy.description,
                    "configured": configured,
                    "not_configured_reason": "" if configured else why,
                    "properties_schema": properties_schema(name),
                }
            )
        return Response(BenefitTypeListSerializer({"types": types}).data)


# --- a product's benefits -----------------------------------------------------------------


class ProductBenefitsSetSerializer(serializers.Serializer):
    benefit_ids = serializers.ListField(
        child=serializers.UUIDField(),
        max_length=services.BENEFITS_PER_PRODUCT_MAX,
        allow_empty=True,
        help_text="Every benefit the product unlocks, in the order customers see them; an empty "
        "list removes them all.",
    )


class ProductBenefitsSerializer(serializers.Serializer):
    product_id = serializers.UUIDField()
    benefit_ids = serializers.ListField(child=serializers.UUIDField(), help_text="In order.")
    benefits = BenefitSerializer(many=True)


PRODUCT_BENEFITS_SET = dict(
    request=ProductBenefitsSetSerializer,
    responses=ProductBenefitsSerializer,
    description="Set the benefits the product unlocks, in order. A benefit added is granted to "
    "every existing holder of the product, a benefit left out is revoked from them, both in "
    "batches after the answer. An id that is not one of your live benefits is a 400 on "
    "`benefit_ids`.",
    **WRITE,
)


class ProductBenefitsView(IdempotentMixin, GenericAPIView):
    """The benefits a product unlocks."""

    scope_resource = "benefits"
    queryset = Product.objects.all()
    lookup_field = "pk"

    def get_queryset(self):
        return self.queryset.filter(organization=self.request.auth.organization)

    def _answer(self, product: Product) -> Response:
        links = (
            ProductBenefit.objects.filter(
                product=product, removed_at__isnull=True, benefit__deleted_at__isnull=True
            )
            .select_related("benefit")
            .prefetch_related(
                Prefetch(
                    "benefit__product_benefits",
                    ProductBenefit.objects.only("benefit_id", "product_id", "removed_at"),
                )
            )
        )
        benefits = [link.benefit for link in links]
        data = {"product_id": product.pk, "benefit_ids": [b.pk for b in benefits], "benefits": benefits}
        return Response(ProductBenefitsSerializer(data).data)

    @extend_schema(
        operation_id="products_benefits_retrieve",
        responses=ProductBenefitsSerializer,
        description="The benefits the product unlocks, in order.",
    )
    def get(self, request, pk=None):
        return self._answer(self.get_object())

    def _set(self, request) -> Response:
        product = self.get_object()
        serializer = ProductBenefitsSetSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        ids = serializer.validated_data["benefit_ids"]
        found = {
            b.pk: b for b in Benefit.objects.filter(organization=self.request.auth.organization, pk__in=ids)
        }
        for position, benefit_id in enumerate(ids):
            benefit = found.get(benefit_id)
            if benefit is None or benefit.deleted_at is not None:
                raise InvalidInput(
                    f"No benefit of yours has the id {benefit_id}.",
                    field=f"benefit_ids[{position}]",
                    code="not_found",
                )
        services.product_benefits_set(product=product, benefits=[found[i] for i in ids], actor=request.auth)
        return self._answer(product)

    @extend_schema(operation_id="products_benefits_update", **PRODUCT_BENEFITS_SET)
    def put(self, request, pk=None):
        return self._set(request)

    @extend_schema(operation_id="products_benefits_set", **PRODUCT_BENEFITS_SET)
    def post(self, request, pk=None):
        return self._set(request)


# --- grants -------------------------------------------------------------------------------


class BenefitGrantFilter(django_filters.FilterSet):
    customer_id = django_filters.UUIDFilter(field_name="customer_id")
    benefit_id = django_filters.UUIDFilter(field_name="benefit_id")
    subscription_id = django_filters.UUIDFilter(field_name="subscription_id")
    order_id = django_filters.UUIDFilter(field_name="order_id")
    status = django_filters.ChoiceFilter(choices=BenefitGrant.Status.choices)
    errored = boolean_filter(method="filter_errored", label="Grants whose last attempt failed (true) or not")

    class Meta:
        model = BenefitGrant
        fields = ["customer_id", "benefit_id", "subscription_id", "order_id", "status", "errored"]

    def filter_errored(self, queryset, name, value):
        return queryset.filter(errored_at__isnull=not value)


class GrantReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(
        max_length=2000, required=False, allow_blank=True, default="", help_text="Kept in the audit log."
    )


@extend_schema_view(
    list=extend_schema(description="Your customers' grants of benefits, newest first."),
    retrieve=extend_schema(description="One grant, with what the strategy made (`properties`)."),
)
class BenefitGrantViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationScopedViewSet):
    """Grants: one customer's benefit through a subscription or a one-time order. `status` is
    what is done (pending, granted, revoked); a failure shows in `error` until it is resolved."""

    scope_resource = "benefits"
    queryset = BenefitGrant.objects.select_related("benefit")
    serializer_class = BenefitGrantSerializer
    filterset_class = BenefitGrantFilter

    def _fresh(self, grant: BenefitGrant) -> BenefitGrant:
        return self.get_queryset().get(pk=grant.pk)

    def _reason(self, request) -> str:
        serializer = GrantReasonSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data["reason"]

    @extend_schema(
        request=None,
        responses=BenefitGrantSerializer,
        description="Try a failed grant's pending work again now (a grant given up after its "
        "attempts, or waiting for its backoff); 409 `grant_not_failed` when it has no failure.",
        **WRITE,
    )
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        grant = services.benefit_grant_retry(grant=self.get_object(), actor=request.auth)
        return Response(BenefitGrantSerializer(self._fresh(grant)).data)

    @extend_schema(
        request=GrantReasonSerializer,
        responses=BenefitGrantSerializer,
        description="Revoke the grant now. Billing events do not grant it again until "
        "`POST .../grant`; 409 `grant_revoked` when already revoked this way.",
        **WRITE,
    )
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        grant = services.benefit_grant_revoke(
            grant=self.get_object(), reason=self._reason(request), actor=request.auth
        )
        return Response(BenefitGrantSerializer(self._fresh(grant)).data)

    @extend_schema(
        request=GrantReasonSerializer,
        responses=BenefitGrantSerializer,
        description="Grant a revoked grant again (and lift a revocation made by hand); 409 "
        "`grant_granted` when it is granted already, `benefit_deleted` for a deleted benefit.",
        **WRITE,
    )
    @action(detail=True, methods=["post"])
    def grant(self, request, pk=None):
        grant = services.benefit_grant_grant(
            grant=self.get_object(), reason=self._reason(request), actor=request.auth
        )
        return Response(BenefitGrantSerializer(self._fresh(grant)).data)
