"""``meter_credit``: units of a meter credited each period, optionally rolling over.

Metering is not built yet, so the strategy keeps the credited balance on the grant
(``properties.credited``, ``properties.period_credits``): each grant or cycle credits the
period's units, and without rollover the unused part of the last period lapses. The meter
reads it once metering lands."""

from rest_framework import serializers

from benefits.strategies import BenefitStrategy, register_strategy

UNITS_MAX = 10**12


class MeterCreditProperties(serializers.Serializer):
    meter = serializers.CharField(max_length=100, help_text="The meter's name (the usage event it counts).")
    units = serializers.IntegerField(min_value=1, max_value=UNITS_MAX, help_text="Units credited per period.")
    rollover = serializers.BooleanField(default=False, help_text="Unused units carry into the next period.")


@register_strategy
class MeterCreditStrategy(BenefitStrategy):
    type = "meter_credit"
    label = "Meter credits"
    description = "Units of a meter credited each billing period (kept on the grant until metering lands)."
    properties_serializer = MeterCreditProperties

    def grant(self, *, grant, benefit) -> dict:
        if grant.properties.get("credited") is not None:  # re-granted: keep the balance
            return dict(grant.properties)
        return {"meter": benefit.properties["meter"], "credited": benefit.properties["units"], "cycles": 0}

    def cycle(self, *, grant, benefit) -> dict:
        units = benefit.properties["units"]
        previous = grant.properties.get("credited", 0)
        credited = previous + units if benefit.properties.get("rollover") else units
        return {**grant.properties, "credited": credited, "cycles": grant.properties.get("cycles", 0) + 1}

    def customer_view(self, *, grant, benefit) -> dict:
        return {"meter": benefit.properties.get("meter"), "credited": grant.properties.get("credited", 0)}
