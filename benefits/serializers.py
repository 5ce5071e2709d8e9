"""How benefits and grants are represented: the API's GET and the events' payloads."""

from rest_framework import serializers

from benefits.models import Benefit, BenefitGrant


class BenefitSerializer(serializers.ModelSerializer):
    type = serializers.CharField(
        read_only=True,
        help_text="license_keys, downloadables, custom, feature_flag, meter_credit or github_repository.",
    )
    properties = serializers.DictField(read_only=True, help_text="The type's settings.")
    product_ids = serializers.SerializerMethodField(help_text="The products that unlock it.")

    class Meta:
        model = Benefit
        fields = [
            "id", "type", "description", "properties", "metadata", "product_ids",
            "created_at", "updated_at", "deleted_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_product_ids(self, benefit: Benefit) -> list[str]:
        return [str(link.product_id) for link in benefit.product_benefits.all() if link.removed_at is None]


class BenefitGrantSerializer(serializers.ModelSerializer):
    benefit_id = serializers.UUIDField(read_only=True)
    benefit_type = serializers.CharField(source="benefit.type", read_only=True)
    customer_id = serializers.UUIDField(read_only=True)
    subscription_id = serializers.UUIDField(read_only=True, allow_null=True)
    order_id = serializers.UUIDField(read_only=True, allow_null=True)
    status = serializers.ChoiceField(
        choices=BenefitGrant.Status.choices,
        read_only=True,
        help_text="pending (being granted), granted, or revoked.",
    )
    properties = serializers.DictField(
        read_only=True, help_text="What was granted: a license key, files, an invitation..."
    )
    error = serializers.CharField(read_only=True, help_text="The last failure, while it is unresolved.")
    next_attempt_at = serializers.DateTimeField(
        read_only=True,
        allow_null=True,
        help_text="When pending work is next tried (null: none, or given up).",
    )

    class Meta:
        model = BenefitGrant
        fields = [
            "id", "benefit_id", "benefit_type", "customer_id", "subscription_id", "order_id", "status",
            "properties", "granted_at", "revoked_at", "revoke_reason", "error", "attempts",
            "next_attempt_at", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields
