import django_filters
from rest_framework import mixins, serializers

from billing.subscriptions.models import Subscription
from core.api.viewsets import OrganizationScopedViewSet


class SubscriptionSerializer(serializers.ModelSerializer):
    customer_id = serializers.UUIDField(read_only=True)
    product_id = serializers.UUIDField(read_only=True)
    price_id = serializers.UUIDField(read_only=True)
    discount_id = serializers.UUIDField(read_only=True, allow_null=True)
    checkout_id = serializers.UUIDField(read_only=True, allow_null=True)

    class Meta:
        model = Subscription
        fields = [
            "id", "status", "customer_id", "product_id", "price_id", "currency", "amount", "seats",
            "billing_anchor", "current_period_start", "current_period_end", "trial_start", "trial_end",
            "cancel_at_period_end", "canceled_at", "ended_at", "past_due_at",
            "discount_id", "discount_periods_remaining", "checkout_id", "metadata", "created_at",
        ]  # fmt: skip
        read_only_fields = fields


class SubscriptionFilter(django_filters.FilterSet):
    customer_id = django_filters.UUIDFilter(field_name="customer_id")
    product_id = django_filters.UUIDFilter(field_name="product_id")
    status = django_filters.ChoiceFilter(choices=Subscription.Status.choices)

    class Meta:
        model = Subscription
        fields = ["customer_id", "product_id", "status"]


class SubscriptionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationScopedViewSet):
    """Subscriptions: list and get (changes and cancellation arrive with the subscriptions engine)."""

    scope_resource = "subscriptions"
    queryset = Subscription.objects.all()
    serializer_class = SubscriptionSerializer
    filterset_class = SubscriptionFilter
