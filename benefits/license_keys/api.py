"""/v1/license-keys (the merchant's, with a token: list, get, update, revoke, activations)
and /v1/customer-portal/license-keys/* (the customer's app, no token: validate, activate,
deactivate; the key is the credential and the organization is named in the body).

Serializers check shapes; the rules live in ``benefits.license_keys.services``.
"""

import hashlib
import json
import uuid

import django_filters
from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle

from benefits.license_keys import keys, selectors, services
from benefits.license_keys.models import LicenseKey, LicenseKeyActivation
from benefits.license_keys.strategy import ACTIVATIONS_MAX, USAGE_MAX
from core.api.filters import refuse_unknown_parameters
from core.api.guesses import guess_failed, guesses_check
from core.api.viewsets import IDEMPOTENCY_PARAMETER, OrganizationScopedViewSet

KEY_MAX = 100
LABEL_MAX = 200
JSON_KEYS_MAX = 50
JSON_CHARS_MAX = 4000
GUESS_SCOPE = "license-key"


# --- Representations ------------------------------------------------------------------------


class LicenseKeyActivationSerializer(serializers.ModelSerializer):
    license_key_id = serializers.UUIDField(read_only=True)
    meta = serializers.DictField(read_only=True, help_text="What the installation sent when it activated.")

    class Meta:
        model = LicenseKeyActivation
        fields = ["id", "license_key_id", "label", "meta", "created_at", "updated_at"]
        read_only_fields = fields


class LicenseKeyActivationDetailSerializer(LicenseKeyActivationSerializer):
    conditions = serializers.DictField(
        read_only=True, help_text="Every validation of this activation must send exactly these."
    )
    deactivated_at = serializers.DateTimeField(read_only=True, allow_null=True)

    class Meta(LicenseKeyActivationSerializer.Meta):
        fields = [*LicenseKeyActivationSerializer.Meta.fields, "conditions", "deactivated_at"]
        read_only_fields = fields


class LicenseKeySerializer(serializers.ModelSerializer):
    organization_id = serializers.UUIDField(read_only=True)
    customer_id = serializers.UUIDField(read_only=True)
    benefit_id = serializers.UUIDField(read_only=True)
    grant_id = serializers.UUIDField(read_only=True)
    key = serializers.CharField(read_only=True, help_text="The key the customer holds.")
    display_key = serializers.CharField(read_only=True, help_text="The key masked but its last characters.")
    status = serializers.ChoiceField(
        choices=LicenseKey.Status.choices,
        read_only=True,
        help_text="granted (usable until it expires), disabled (by you, for now) or revoked (with its "
        "grant, or by you: final until the benefit is granted again).",
    )
    limit_activations = serializers.IntegerField(
        read_only=True, allow_null=True, help_text="Installations allowed at once; null: no activations."
    )
    activations_count = serializers.IntegerField(read_only=True, help_text="Live activations.")
    limit_usage = serializers.IntegerField(read_only=True, allow_null=True, help_text="Null: unlimited.")
    usage = serializers.IntegerField(read_only=True, help_text="Counted by validations with increment_usage.")
    validations = serializers.IntegerField(read_only=True, help_text="Successful validations.")
    expires_at = serializers.DateTimeField(read_only=True, allow_null=True, help_text="Null: never.")

    class Meta:
        model = LicenseKey
        fields = [
            "id", "organization_id", "customer_id", "benefit_id", "grant_id", "key", "display_key",
            "status", "limit_activations", "activations_count", "limit_usage", "usage", "validations",
            "last_validated_at", "expires_at", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields


class LicenseKeyWithActivationsSerializer(LicenseKeySerializer):
    activations = LicenseKeyActivationSerializer(
        many=True, read_only=True, source="live_activations", help_text="Live activations, oldest first."
    )

    class Meta(LicenseKeySerializer.Meta):
        fields = [*LicenseKeySerializer.Meta.fields, "activations"]
        read_only_fields = fields


class ValidatedLicenseKeySerializer(LicenseKeySerializer):
    activation = serializers.SerializerMethodField(help_text="The activation validated, if one was named.")

    class Meta(LicenseKeySerializer.Meta):
        fields = [*LicenseKeySerializer.Meta.fields, "activation"]
        read_only_fields = fields

    @extend_schema_field(LicenseKeyActivationSerializer(allow_null=True))
    def get_activation(self, key) -> dict | None:
        activation = self.context.get("activation")
        return LicenseKeyActivationSerializer(activation).data if activation else None


class LicenseKeyActivationReadSerializer(LicenseKeyActivationSerializer):
    license_key = LicenseKeySerializer(read_only=True)

    class Meta(LicenseKeyActivationSerializer.Meta):
        fields = [*LicenseKeyActivationSerializer.Meta.fields, "license_key"]
        read_only_fields = fields


# --- The merchant's API ---------------------------------------------------------------------


class LicenseKeyUpdateSerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=[LicenseKey.Status.GRANTED, LicenseKey.Status.DISABLED],
        required=False,
        help_text="disabled: refused until granted again (revoking is POST .../revoke).",
    )
    limit_activations = serializers.IntegerField(
        min_value=1, max_value=ACTIVATIONS_MAX, required=False, allow_null=True, help_text="Null: none."
    )
    limit_usage = serializers.IntegerField(
        min_value=1, max_value=USAGE_MAX, required=False, allow_null=True, help_text="Null: unlimited."
    )
    usage = serializers.IntegerField(min_value=0, max_value=USAGE_MAX, required=False)
    expires_at = serializers.DateTimeField(required=False, allow_null=True, help_text="Null: never.")


class LicenseKeyRevokeSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class LicenseKeyFilter(django_filters.FilterSet):
    benefit_id = django_filters.UUIDFilter(field_name="benefit_id")
    customer_id = django_filters.UUIDFilter(field_name="customer_id")
    status = django_filters.ChoiceFilter(choices=LicenseKey.Status.choices)

    class Meta:
        model = LicenseKey
        fields = ["benefit_id", "customer_id", "status"]


class LicenseKeyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationScopedViewSet):
    """Your customers' license keys, made by `license_keys` benefits (one per grant)."""

    scope_resource = "benefits"
    queryset = LicenseKey.objects.all()
    serializer_class = LicenseKeySerializer
    filterset_class = LicenseKeyFilter

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action == "retrieve":
            return selectors.license_keys_with_activations(queryset)
        return queryset

    def get_serializer_class(self):
        return LicenseKeyWithActivationsSerializer if self.action == "retrieve" else LicenseKeySerializer

    @extend_schema(
        request=LicenseKeyUpdateSerializer,
        responses=LicenseKeyWithActivationsSerializer,
        parameters=[IDEMPOTENCY_PARAMETER],
        description="Disable or enable a key, change its limits, usage or expiry (only the fields sent "
        "change). 409 `license_key_revoked` for a revoked key; 400 when usage would exceed "
        "limit_usage. A later change of the benefit's settings applies them over these.",
    )
    def partial_update(self, request, pk=None):
        body = LicenseKeyUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        key = services.license_key_update(
            license_key=self.get_object(), actor=request.auth, **body.validated_data
        )
        return Response(self._detail(key))

    @extend_schema(
        request=LicenseKeyRevokeSerializer,
        responses=LicenseKeyWithActivationsSerializer,
        parameters=[IDEMPOTENCY_PARAMETER],
        description="Revoke the key: every validation and activation is refused from now on. The grant "
        "stays; granting the benefit again after its revocation makes the key live again. 409 "
        "`license_key_revoked` when it already is.",
    )
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        body = LicenseKeyRevokeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        key = services.license_key_revoke(
            license_key=self.get_object(), actor=request.auth, **body.validated_data
        )
        return Response(self._detail(key))

    @extend_schema(
        responses=LicenseKeyActivationDetailSerializer,
        description="One activation of the key (live or deactivated).",
    )
    @action(detail=True, methods=["get"], url_path=r"activations/(?P<activation_id>[^/]+)")
    def activation(self, request, pk=None, activation_id=None):
        key = self.get_object()
        try:
            activation_pk = uuid.UUID(activation_id)
        except ValueError:
            raise NotFound() from None
        activation = LicenseKeyActivation.objects.filter(license_key=key, pk=activation_pk).first()
        if activation is None:
            raise NotFound()
        return Response(LicenseKeyActivationDetailSerializer(activation).data)

    def _detail(self, key: LicenseKey) -> dict:
        key = selectors.license_keys_with_activations(LicenseKey.objects.filter(pk=key.pk)).get()
        return LicenseKeyWithActivationsSerializer(key).data


# --- The customer's app: public, no token ---------------------------------------------------


def _bounded_json(value: dict) -> dict:
    if len(value) > JSON_KEYS_MAX:
        raise serializers.ValidationError(f"At most {JSON_KEYS_MAX} keys.")
    if len(json.dumps(value)) > JSON_CHARS_MAX:
        raise serializers.ValidationError(f"At most {JSON_CHARS_MAX} characters as JSON.")
    return value


class PublicKeySerializer(serializers.Serializer):
    key = serializers.CharField(max_length=KEY_MAX, help_text="The license key the customer entered.")
    organization_id = serializers.UUIDField(help_text="The merchant's organization (its public id).")


class LicenseKeyValidateSerializer(PublicKeySerializer):
    activation_id = serializers.UUIDField(
        required=False, allow_null=True, default=None, help_text="Validate this activation too."
    )
    benefit_id = serializers.UUIDField(
        required=False, allow_null=True, default=None, help_text="The key must be of this benefit."
    )
    customer_id = serializers.UUIDField(
        required=False, allow_null=True, default=None, help_text="The key must be this customer's."
    )
    increment_usage = serializers.IntegerField(
        min_value=0,
        max_value=USAGE_MAX,
        required=False,
        allow_null=True,
        default=0,
        help_text="Add this to the key's usage (refused, and nothing counted, beyond limit_usage).",
    )
    conditions = serializers.DictField(
        required=False,
        default=dict,
        help_text="Must equal the activation's conditions, when it has some (e.g. a machine id).",
    )

    def validate_increment_usage(self, value):
        return value or 0

    def validate_conditions(self, value):
        return _bounded_json(value)


class LicenseKeyActivateSerializer(PublicKeySerializer):
    label = serializers.CharField(max_length=LABEL_MAX, help_text="A name for the installation.")
    conditions = serializers.DictField(
        required=False, default=dict, help_text="Each validation of this activation must send these."
    )
    meta = serializers.DictField(required=False, default=dict, help_text="Kept with the activation.")

    def validate_conditions(self, value):
        return _bounded_json(value)

    def validate_meta(self, value):
        return _bounded_json(value)


class LicenseKeyDeactivateSerializer(PublicKeySerializer):
    activation_id = serializers.UUIDField()


class LicenseKeyAddressThrottle(SimpleRateThrottle):
    """Public license key requests per client address."""

    scope = "license_key_address"

    def get_rate(self) -> str:
        return settings.RECUR_LICENSE_KEY_RATE

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class LicenseKeyThrottle(SimpleRateThrottle):
    """Public license key requests per key (whoever sends them). The key is hashed: Redis
    never holds it."""

    scope = "license_key"

    def get_rate(self) -> str:
        return settings.RECUR_LICENSE_KEY_RATE

    def get_cache_key(self, request, view):
        data = request.data if isinstance(request.data, dict) else {}
        key = data.get("key")
        if not isinstance(key, str) or not key.strip():
            return None  # refused by the serializer anyway
        ident = f"{data.get('organization_id')}:{keys.key_normalize(key)}"
        return self.cache_format % {"scope": self.scope, "ident": hashlib.sha256(ident.encode()).hexdigest()}


NOT_FOUND = OpenApiResponse(
    description="No such license key in this organization (the same answer for another organization's), "
    "or no such live activation of it."
)
REFUSED = OpenApiResponse(
    description="The key is refused: `license_key_revoked`, `license_key_disabled`, `license_key_expired`, "
    "`activation_limit_reached`, `activations_not_supported`, `usage_limit_reached`, "
    "`conditions_mismatch` or `deactivation_not_allowed`. Nothing is counted."
)
TOO_MANY = OpenApiResponse(
    description="More than 3 requests a second from this address or for this key, or too many unknown "
    "keys from this address; retry after `Retry-After` seconds."
)


@extend_schema(auth=[], tags=["customer-portal"])
class LicenseKeyPublicViewSet(viewsets.GenericViewSet):
    """For the merchant's software on the customer's machine: no token, the key is the credential."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [LicenseKeyAddressThrottle, LicenseKeyThrottle]
    serializer_class = ValidatedLicenseKeySerializer

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        refuse_unknown_parameters(request, ())  # the body carries everything
        # An address that sent too many unknown keys learns nothing more (counted apart from
        # token guesses, so customers' typos never lock a merchant's server out of the API).
        guesses_check(request, scope=GUESS_SCOPE, limit=settings.RECUR_LICENSE_KEY_GUESS_LIMIT)

    def _call(self, service, **kwargs):
        try:
            return service(**kwargs)
        except services.LicenseKeyNotFound as exc:
            if exc.code == "license_key_not_found":
                guess_failed(self.request, scope=GUESS_SCOPE)
            raise

    @extend_schema(
        operation_id="customer_portal_license_keys_validate",
        request=LicenseKeyValidateSerializer,
        responses={200: ValidatedLicenseKeySerializer, 403: REFUSED, 404: NOT_FOUND, 429: TOO_MANY},
        description="Is the key usable now? Answers its status, expiry, usage and limits, and the "
        "activation when `activation_id` is given. Counts the validation and adds `increment_usage` to "
        "its usage, only when it answers 200.",
    )
    @action(detail=False, methods=["post"])
    def validate(self, request):
        body = LicenseKeyValidateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        key, activation = self._call(services.license_key_validate, **body.validated_data)
        return Response(ValidatedLicenseKeySerializer(key, context={"activation": activation}).data)

    @extend_schema(
        operation_id="customer_portal_license_keys_activate",
        request=LicenseKeyActivateSerializer,
        responses={200: LicenseKeyActivationReadSerializer, 403: REFUSED, 404: NOT_FOUND, 429: TOO_MANY},
        description="Take one of the key's activations for an installation; keep the answer's `id` to "
        "validate and deactivate it. Refused once `limit_activations` are live.",
    )
    @action(detail=False, methods=["post"])
    def activate(self, request):
        body = LicenseKeyActivateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        activation = self._call(services.license_key_activate, **body.validated_data)
        return Response(LicenseKeyActivationReadSerializer(activation).data)

    @extend_schema(
        operation_id="customer_portal_license_keys_deactivate",
        request=LicenseKeyDeactivateSerializer,
        responses={204: None, 403: REFUSED, 404: NOT_FOUND, 429: TOO_MANY},
        description="Free an activation (when the benefit lets customers do it).",
    )
    @action(detail=False, methods=["post"])
    def deactivate(self, request):
        body = LicenseKeyDeactivateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        self._call(services.license_key_deactivate, **body.validated_data)
        return Response(status=status.HTTP_204_NO_CONTENT)
