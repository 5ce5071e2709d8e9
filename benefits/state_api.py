"""GET /v1/customers/{id}/state and /v1/customers/external/{external_id}/state.

The one call an integrator's app makes to decide what a customer may use. The serializers
define the answer (and its OpenAPI schema); the answer is rendered from them with
``compile_representation`` (the same output without DRF's per-field cost), since the call is
made on every page view of the merchant's app. Scope: ``customers:read``, like Polar's: the
state is the customer's, and the token that reads a customer reads what it holds.
"""

import uuid

from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Customer
from benefits.state import CustomerState, customer_state, state_customer
from billing.subscriptions.models import Subscription
from core.api.representation import compile_representation
from core.api.viewsets import IdempotentMixin

AMOUNT_HELP = "In the currency's minor units (cents for usd, yen for jpy)."


class StateSubscriptionSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.ChoiceField(
        choices=Subscription.Status.choices,
        help_text="active or trialing; past_due, unpaid or canceled only while access lasts "
        "(`access_ends_at`).",
    )
    product_id = serializers.UUIDField()
    product_name = serializers.CharField(source="product.name")
    price_id = serializers.UUIDField()
    amount = serializers.IntegerField(help_text=f"Per period, before discount and tax. {AMOUNT_HELP}")
    currency = serializers.CharField()
    recurring_interval = serializers.CharField(
        source="product.recurring_interval", help_text="day, week, month or year."
    )
    recurring_interval_count = serializers.IntegerField(source="product.recurring_interval_count")
    seats = serializers.IntegerField(allow_null=True)
    current_period_start = serializers.DateTimeField()
    current_period_end = serializers.DateTimeField()
    cancel_at_period_end = serializers.BooleanField()
    trial_end = serializers.DateTimeField(allow_null=True)
    access_ends_at = serializers.DateTimeField(
        allow_null=True,
        help_text="When access ends unless something changes: the period's end after a cancellation, "
        "the end of the grace period while a payment is overdue; null while it renews.",
    )


class StateBenefitSerializer(serializers.Serializer):
    id = serializers.UUIDField(help_text="The grant's id.")
    benefit_id = serializers.UUIDField()
    benefit_type = serializers.CharField(
        source="benefit.type",
        help_text="license_keys, downloadables, custom, feature_flag, meter_credit or github_repository.",
    )
    description = serializers.CharField(source="benefit.description")
    benefit_metadata = serializers.DictField(source="benefit.metadata", help_text="The benefit's metadata.")
    subscription_id = serializers.UUIDField(allow_null=True, help_text="The subscription it comes with.")
    order_id = serializers.UUIDField(allow_null=True, help_text="Or the one-time order it comes with.")
    granted_at = serializers.DateTimeField(allow_null=True)
    properties = serializers.DictField(
        help_text="What the customer holds, per type: license_keys the key, its status, limits and "
        "expiry; feature_flag the `key` and its `metadata`; downloadables the files with signed "
        "links; meter_credit the `meter` and the units `credited`; custom the merchant's `note`."
    )


class CustomerStateSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    external_id = serializers.CharField(allow_null=True)
    email = serializers.EmailField()
    name = serializers.CharField()
    metadata = serializers.DictField(child=serializers.CharField())
    active_subscriptions = StateSubscriptionSerializer(
        many=True, help_text="The subscriptions that give access now, newest first."
    )
    granted_benefits = StateBenefitSerializer(
        many=True,
        help_text="The benefits granted and not being revoked (pending and revoked grants are left "
        "out), oldest grant first.",
    )
    meters = serializers.ListField(
        child=serializers.DictField(),
        help_text="The customer's meters and their balances. Metering does not exist yet: always "
        "empty (meter credits show under `granted_benefits` meanwhile).",
    )


_customer = compile_representation(
    CustomerStateSerializer, exclude=("active_subscriptions", "granted_benefits", "meters")
)
_subscription = compile_representation(StateSubscriptionSerializer)
_benefit = compile_representation(StateBenefitSerializer, exclude=("properties",))


def state_representation(state: CustomerState) -> dict:
    return {
        **_customer(state.customer),
        "active_subscriptions": [_subscription(subscription) for subscription in state.subscriptions],
        "granted_benefits": [{**_benefit(b.grant), "properties": b.properties} for b in state.benefits],
        "meters": state.meters,
    }


class CustomerStateView(IdempotentMixin, APIView):
    """What the customer may use now: its active subscriptions and granted benefits."""

    scope_resource = "customers"
    serializer_class = CustomerStateSerializer  # for the schema
    queryset = Customer.objects.all()  # what the path names (never evaluated: state_customer reads)

    def _answer(self, customer: Customer | None) -> Response:
        if customer is None:
            raise exceptions.NotFound("No such customer.")
        return Response(state_representation(customer_state(customer=customer)))

    @extend_schema(
        operation_id="customers_state_retrieve",
        responses=CustomerStateSerializer,
        description="The customer's state: its active subscriptions and granted benefits with their "
        "properties (license keys, flags, files), the one call your app makes to decide what the "
        "customer may use. Needs `customers:read`.",
    )
    def get(self, request, pk: str):
        try:
            pk = uuid.UUID(pk)
        except ValueError:
            raise exceptions.NotFound("No such customer.") from None
        return self._answer(state_customer(organization=request.auth.organization, pk=pk))


class CustomerExternalStateView(CustomerStateView):
    @extend_schema(
        operation_id="customers_external_state_retrieve",
        responses=CustomerStateSerializer,
        description="The state of the customer with this `external_id` (your own id for it), as "
        "`GET /v1/customers/{id}/state` answers it.",
    )
    def get(self, request, external_id: str):
        return self._answer(state_customer(organization=request.auth.organization, external_id=external_id))
