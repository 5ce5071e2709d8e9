"""``custom``: the merchant delivers it (its webhook ``benefit_grant.created`` says when);
the customer sees the merchant's note."""

from rest_framework import serializers

from benefits.strategies import BenefitStrategy, register_strategy


class CustomProperties(serializers.Serializer):
    note = serializers.CharField(
        max_length=5000,
        required=False,
        allow_blank=True,
        default="",
        help_text="Shown to the customer who holds it (instructions, a link, a code).",
    )


@register_strategy
class CustomStrategy(BenefitStrategy):
    type = "custom"
    label = "Custom"
    description = "Anything you deliver yourself, on the benefit_grant webhooks; a note for the customer."
    properties_serializer = CustomProperties

    def customer_view(self, *, grant, benefit) -> dict:
        return {"note": benefit.properties.get("note", "")}
