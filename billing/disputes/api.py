"""/v1/disputes: chargebacks and inquiries opened by customers' banks, read-only.

Disputes are written by ``charge.dispute.*`` events only (``billing.disputes.services``);
the API lists them and tells what each one took from the merchant's balance.
"""

import django_filters
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers

from billing.disputes.models import Dispute
from core.api.filters import DateTimeFilter
from core.api.viewsets import OrganizationScopedViewSet

AMOUNT_HELP = "In the currency's minor units (cents for usd, yen for jpy)."


class DisputeSerializer(serializers.ModelSerializer):
    order_id = serializers.UUIDField(
        read_only=True, allow_null=True, help_text="The disputed order (null for a payment without one)."
    )
    payment_id = serializers.UUIDField(read_only=True, allow_null=True, help_text="The disputed payment.")
    customer_id = serializers.UUIDField(read_only=True, allow_null=True)
    status = serializers.ChoiceField(
        choices=Dispute.Status.choices,
        read_only=True,
        help_text="As at Stripe: warning_needs_response, warning_under_review, warning_closed "
        "(inquiries, which move no money), needs_response, under_review, won, lost or prevented.",
    )
    reason = serializers.CharField(
        read_only=True, help_text="The bank's reason, as at Stripe: fraudulent, duplicate, general ..."
    )
    amount = serializers.IntegerField(read_only=True, help_text=f"The disputed amount. {AMOUNT_HELP}")
    tax_amount = serializers.IntegerField(
        read_only=True,
        help_text="The part of the disputed amount that was tax (given back from tax payable, not "
        "from your balance). 0 until the funds are withdrawn.",
    )
    fee = serializers.IntegerField(
        read_only=True,
        help_text="The dispute fee charged to your balance when the funds were withdrawn, as Stripe "
        "charged it (its balance transaction's `fee`), or the organization's `dispute_fee` for "
        "payments recorded manually. 0 until then.",
    )
    fee_currency = serializers.CharField(
        read_only=True, help_text="The fee's currency: Stripe's settlement currency (blank until known)."
    )
    fee_source = serializers.CharField(
        read_only=True,
        help_text="`processor` (Stripe's balance transactions) or `organization` (the setting).",
    )
    fee_refunded = serializers.IntegerField(
        read_only=True,
        help_text="The part of the fee given back to your balance with a won dispute: what Stripe "
        "gave back, or the whole fee for the organization's setting.",
    )
    evidence_due_by = serializers.DateTimeField(
        read_only=True, allow_null=True, help_text="Submit evidence at the processor before this time."
    )
    funds_withdrawn_at = serializers.DateTimeField(
        read_only=True,
        allow_null=True,
        help_text="When the amount (less its tax part) and the fee left your balance.",
    )
    funds_reinstated_at = serializers.DateTimeField(
        read_only=True, allow_null=True, help_text="When a won dispute's amount came back to your balance."
    )
    closed_at = serializers.DateTimeField(read_only=True, allow_null=True)
    access_revoked_at = serializers.DateTimeField(
        read_only=True,
        allow_null=True,
        help_text="When the order's subscription and benefits were revoked because of the dispute "
        "(the organization's `dispute_revokes_access` setting).",
    )
    access_restored_at = serializers.DateTimeField(
        read_only=True,
        allow_null=True,
        help_text="When a won dispute restored the access it revoked (the organization's "
        "`dispute_won_restores_access` setting); `access_note` says what was restored.",
    )
    access_note = serializers.CharField(read_only=True)

    class Meta:
        model = Dispute
        fields = [
            "id", "status", "reason", "amount", "currency", "tax_amount", "fee", "fee_currency",
            "fee_source", "fee_refunded", "order_id", "payment_id", "customer_id", "processor_dispute_id", "processor_charge_id",
            "evidence_due_by", "funds_withdrawn_at", "funds_reinstated_at", "closed_at", "access_revoked_at",
            "access_restored_at", "access_note", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields


class DisputeFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Dispute.Status.choices)
    order_id = django_filters.UUIDFilter(field_name="order_id")
    customer_id = django_filters.UUIDFilter(field_name="customer_id")
    created_after = DateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = DateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Dispute
        fields = ["status", "order_id", "customer_id"]


@extend_schema_view(
    list=extend_schema(
        operation_id="disputes_list",
        description="Your disputes, newest first. Filter by `status`, `order_id`, `customer_id` "
        "and `created_after` / `created_before`.",
    ),
    retrieve=extend_schema(operation_id="disputes_retrieve", description="One dispute."),
)
class DisputeViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationScopedViewSet):
    """Disputes (chargebacks and inquiries) of your customers' payments, from the processor's events."""

    scope_resource = "disputes"
    queryset = Dispute.objects.all()
    serializer_class = DisputeSerializer
    filterset_class = DisputeFilter
