"""/v1/subscriptions: list and get, plan and seat changes (with a preview), cancellation,
revocation, pause and resume, and trials.

Serializers check shapes (types, enums, lengths) and report field errors; every rule (what a
subscription in this state may do, which prices it may move to, how a change is prorated)
lives in ``billing.subscriptions.services``, which the backoffice calls too.
"""

import django_filters
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import exceptions, mixins, serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.models import ProrationBehavior
from billing.catalog.services import MAX_SEATS
from billing.orders.api import OrderSerializer
from billing.subscriptions import services
from billing.subscriptions.changes import ChangePlan
from billing.subscriptions.models import BillingEntry, Subscription
from core.api.permissions import HasTokenScope
from core.api.viewsets import IDEMPOTENCY_PARAMETER, OrganizationScopedViewSet

AMOUNT_HELP = "In the currency's minor units (cents for usd, yen for jpy)."
# Values only: with Django's labels the choice set would equal the organization's
# ``proration_default`` and drf-spectacular would warn about one enum under two names.
PRORATION_BEHAVIORS = ProrationBehavior.values


@extend_schema_field(
    {
        "type": ["object", "null"],
        "description": "A change waiting for the end of the current period (`next_period`); a null "
        "field stays as it is.",
        "properties": {
            "price_id": {"type": ["string", "null"], "format": "uuid"},
            "seats": {"type": ["integer", "null"]},
        },
    }
)
class ScheduledChangeField(serializers.JSONField):
    pass


class SubscriptionSerializer(serializers.ModelSerializer):
    customer_id = serializers.UUIDField(read_only=True)
    product_id = serializers.UUIDField(read_only=True)
    price_id = serializers.UUIDField(read_only=True)
    discount_id = serializers.UUIDField(read_only=True, allow_null=True)
    checkout_id = serializers.UUIDField(read_only=True, allow_null=True)
    scheduled_change = ScheduledChangeField(read_only=True)

    class Meta:
        model = Subscription
        fields = [
            "id", "status", "customer_id", "product_id", "price_id", "currency", "amount", "seats",
            "billing_anchor", "current_period_start", "current_period_end", "trial_start", "trial_end",
            "cancel_at_period_end", "canceled_at", "ended_at", "past_due_at",
            "cancellation_reason", "cancellation_comment", "pause_at_period_end", "paused_at",
            "scheduled_change",
            "discount_id", "discount_periods_remaining", "checkout_id", "benefits_revoke_at", "metadata",
            "created_at",
        ]  # fmt: skip
        read_only_fields = fields


class SubscriptionWithOrderSerializer(SubscriptionSerializer):
    order = OrderSerializer(
        source="api_order",
        read_only=True,
        allow_null=True,
        help_text="The order the operation billed at once (a change with `invoice`, a resume), "
        "with its payment status after the charge; null when nothing was billed now.",
    )

    class Meta(SubscriptionSerializer.Meta):
        fields = [*SubscriptionSerializer.Meta.fields, "order"]
        read_only_fields = fields


class SubscriptionFilter(django_filters.FilterSet):
    customer_id = django_filters.UUIDFilter(field_name="customer_id")
    product_id = django_filters.UUIDFilter(field_name="product_id")
    status = django_filters.ChoiceFilter(choices=Subscription.Status.choices)

    class Meta:
        model = Subscription
        fields = ["customer_id", "product_id", "status"]


# --- request bodies --------------------------------------------------------------------------


class SubscriptionChangeSerializer(serializers.Serializer):
    price_id = serializers.UUIDField(
        required=False,
        allow_null=True,
        help_text="An active recurring price of yours in the subscription's currency. Omit to keep the "
        "current price (to change seats only). A price with another interval starts a new period "
        "now, billed now, with the unused part of the current one credited.",
    )
    seats = serializers.IntegerField(
        min_value=1,
        max_value=MAX_SEATS,
        required=False,
        allow_null=True,
        help_text="Seat-based prices only: the new number of seats, within the price's bounds.",
    )
    proration_behavior = serializers.ChoiceField(
        choices=PRORATION_BEHAVIORS,
        required=False,
        allow_null=True,
        help_text="invoice: bill the difference now. prorate: add it to the next order. next_period: "
        "apply the change at renewal. none: apply now without proration. Defaults to your "
        "organization's `proration_default`. A trialing subscription is never prorated.",
    )
    replace_scheduled_change = serializers.BooleanField(
        required=False,
        default=False,
        help_text="A change waiting for the period end (`scheduled_change`) is kept by default: a seat "
        "change keeps a scheduled plan change and vice versa, and `next_period` merges into it. "
        "true drops it (with `next_period`: replaces it with this change).",
    )


class SubscriptionCancelSerializer(serializers.Serializer):
    reason = serializers.ChoiceField(
        choices=services.CANCELLATION_REASONS, required=False, allow_blank=True, help_text="Why it ends."
    )
    comment = serializers.CharField(
        max_length=5000, required=False, allow_blank=True, help_text="The customer's own words."
    )


class SubscriptionDiscountSerializer(serializers.Serializer):
    discount_code = serializers.CharField(
        max_length=64,
        allow_blank=True,
        allow_null=True,
        help_text="A code to apply; empty or null removes the discount.",
    )


class SubscriptionRevokeSerializer(serializers.Serializer):
    reason = serializers.CharField(
        max_length=5000, required=False, allow_blank=True, help_text="Why it ends now (kept on record)."
    )
    credit = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Credit the unused part of the paid current period, prorated to the second, to the "
        "customer's balance (wallet), which pays their next orders. See `revoke/preview`.",
    )


class SubscriptionRevokePreviewSerializer(serializers.Serializer):
    subscription_id = serializers.UUIDField()
    currency = serializers.CharField()
    credit_amount = serializers.IntegerField(
        help_text="What `revoke` with `credit` would credit to the customer's balance now, tax "
        f"included: the unused part of what was paid for the current period. {AMOUNT_HELP}"
    )
    credit_tax = serializers.IntegerField(help_text="The tax inside `credit_amount`.")


class SubscriptionTrialExtendSerializer(serializers.Serializer):
    trial_end = serializers.DateTimeField(
        help_text="The new end of the trial: later than the current one. The first charge moves to it."
    )


# --- responses -------------------------------------------------------------------------------


class ChangeLineSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=BillingEntry.Kind.choices)
    label = serializers.CharField()
    amount = serializers.IntegerField(help_text=f"Signed: credits are negative. {AMOUNT_HELP}")
    period_start = serializers.DateTimeField(allow_null=True)
    period_end = serializers.DateTimeField(allow_null=True)


class InvoiceItemPreviewSerializer(serializers.Serializer):
    label = serializers.CharField()
    amount = serializers.IntegerField()
    quantity = serializers.IntegerField()
    proration = serializers.BooleanField()
    period_start = serializers.DateTimeField(allow_null=True)
    period_end = serializers.DateTimeField(allow_null=True)


class InvoicePreviewSerializer(serializers.Serializer):
    """The order ``invoice`` creates, not saved."""

    currency = serializers.CharField()
    subtotal = serializers.IntegerField()
    discount_amount = serializers.IntegerField()
    net = serializers.IntegerField()
    tax = serializers.IntegerField()
    total = serializers.IntegerField()
    tax_rate_bps = serializers.IntegerField()
    tax_inclusive = serializers.BooleanField()
    reverse_charge = serializers.BooleanField()
    applied_balance = serializers.IntegerField(
        help_text="Paid from the customer's balance (negative: owed money collected with this order)."
    )
    carried_forward = serializers.IntegerField(
        help_text="Part of the total below the processor's minimum charge: not charged now, carried "
        "through the customer's balance to their next order."
    )
    due = serializers.IntegerField(help_text="What the card is charged now.")
    items = InvoiceItemPreviewSerializer(many=True)


class SubscriptionChangePreviewSerializer(serializers.Serializer):
    subscription_id = serializers.UUIDField()
    proration_behavior = serializers.ChoiceField(
        choices=PRORATION_BEHAVIORS,
        help_text="The behaviour that applies (a trialing subscription is never prorated: `none`).",
    )
    effective_at = serializers.DateTimeField(help_text="When the new price and seats take effect.")
    price_id = serializers.UUIDField()
    product_id = serializers.UUIDField()
    seats = serializers.IntegerField(allow_null=True)
    currency = serializers.CharField()
    amount = serializers.IntegerField(help_text=f"The new recurring amount per period. {AMOUNT_HELP}")
    lines = ChangeLineSerializer(many=True, help_text="The proration lines the change bills.")
    amount_due_now = serializers.IntegerField(
        help_text="What is charged at once: the invoice's `due` (its total less the customer's balance "
        "and any amount carried forward), otherwise 0."
    )
    amount_carried_forward = serializers.IntegerField(
        help_text="Part of the invoice below the processor's minimum charge: the invoice is paid without "
        "a charge and this amount is added to the customer's next order (through their balance). "
        f"{AMOUNT_HELP}"
    )
    scheduled_change = ScheduledChangeField(
        help_text="The change waiting for the period end after this change (kept, merged or replaced)."
    )
    next_order_adjustment = serializers.IntegerField(
        help_text="What the next order gains (or, negative, loses): the proration lines for `prorate`."
    )
    balance_credit = serializers.IntegerField(
        help_text="For `invoice`: a credit beyond the invoice's charges (a downgrade), tax included, "
        "that goes to the customer's balance (wallet) and pays their next orders. "
        f"{AMOUNT_HELP}"
    )
    invoice = InvoicePreviewSerializer(
        allow_null=True, help_text="For `invoice`: the order billed now. Null otherwise."
    )


def change_preview_data(plan: ChangePlan) -> dict:
    """A ``ChangePlan`` as the preview's response body."""
    invoice = plan.invoice
    data = {
        "subscription_id": plan.subscription.pk,
        "proration_behavior": plan.behavior,
        "effective_at": plan.effective_at,
        "price_id": plan.price.pk,
        "product_id": plan.price.product_id,
        "seats": plan.seats,
        "currency": plan.subscription.currency,
        "amount": plan.amount,
        "lines": plan.entries,
        "amount_due_now": plan.amount_due_now,
        "amount_carried_forward": plan.amount_carried_forward,
        "scheduled_change": plan.scheduled_change,
        "next_order_adjustment": plan.next_order_adjustment,
        "balance_credit": invoice.wallet_credit if invoice is not None else 0,
        "invoice": None,
    }
    if invoice is not None:
        order = invoice.order
        data["invoice"] = {
            **{f: getattr(order, f) for f in InvoicePreviewSerializer._declared_fields if f != "items"},
            "items": invoice.items,
        }
    return SubscriptionChangePreviewSerializer(data).data


class ReadScopeForPreview(HasTokenScope):
    """A preview is a POST (it has a body) but writes nothing: `subscriptions:read` is enough."""

    def has_permission(self, request, view) -> bool:
        token = request.auth
        if token is None:
            raise exceptions.NotAuthenticated("An access token is required.", code="missing_token")
        if not token.has_scope(view.scope_resource, False):
            raise exceptions.PermissionDenied(
                f"This token lacks the '{view.scope_resource}:read' scope.", code="insufficient_scope"
            )
        return True


WRITE = {"parameters": [IDEMPOTENCY_PARAMETER]}


class SubscriptionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationScopedViewSet):
    """Subscriptions: list and get, change price or seats (preview first), cancel at period end or
    revoke now, pause and resume, extend or end trials."""

    scope_resource = "subscriptions"
    queryset = Subscription.objects.all()
    serializer_class = SubscriptionSerializer
    filterset_class = SubscriptionFilter

    def get_permissions(self):
        if self.action == "change_preview":
            return [ReadScopeForPreview()]
        return super().get_permissions()

    def _body(self, serializer_class) -> dict:
        serializer = serializer_class(data=self.request.data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def _answer(self, subscription: Subscription, order=None, *, with_order: bool = False) -> Response:
        """The subscription as stored now (payments run after commit and may have moved it)."""
        subscription.refresh_from_db()
        if not with_order:
            return Response(SubscriptionSerializer(subscription).data)
        if order is not None:
            order = type(order).objects.prefetch_related("items").get(pk=order.pk)
        subscription.api_order = order
        return Response(SubscriptionWithOrderSerializer(subscription).data)

    @extend_schema(
        operation_id="subscriptions_change_preview",
        request=SubscriptionChangeSerializer,
        responses=SubscriptionChangePreviewSerializer,
        description="What `change` with the same body would do now: the lines, the amount charged at "
        "once and the effect on the next order. Writes nothing; needs only `subscriptions:read`.",
    )
    @action(detail=True, methods=["post"], url_path="change/preview")
    def change_preview(self, request, pk=None):
        subscription = self.get_object()
        body = self._body(SubscriptionChangeSerializer)
        plan = services.subscription_change_preview(subscription=subscription, **body)
        return Response(change_preview_data(plan))

    @extend_schema(
        operation_id="subscriptions_change",
        request=SubscriptionChangeSerializer,
        responses=SubscriptionWithOrderSerializer,
        description="Change the price and/or seats. With `invoice` the difference is billed at once "
        "and charged to the customer's default payment method; `order` is that order.",
        **WRITE,
    )
    @action(detail=True, methods=["post"])
    def change(self, request, pk=None):
        subscription = self.get_object()
        body = self._body(SubscriptionChangeSerializer)
        subscription, order = services.subscription_change(
            subscription=subscription, actor=request.auth, **body
        )
        return self._answer(subscription, order, with_order=True)

    @extend_schema(
        operation_id="subscriptions_cancel",
        request=SubscriptionCancelSerializer,
        responses=SubscriptionSerializer,
        description="Cancel at the end of the current period; the customer keeps access until then.",
        **WRITE,
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        subscription = self.get_object()
        body = self._body(SubscriptionCancelSerializer)
        return self._answer(
            services.subscription_cancel(subscription=subscription, actor=request.auth, **body)
        )

    @extend_schema(
        operation_id="subscriptions_discount",
        request=SubscriptionDiscountSerializer,
        responses=SubscriptionSerializer,
        description="Apply a discount code, or remove the discount with an empty code. The change applies "
        "from the next order on; the period already billed is not re-priced.",
        **WRITE,
    )
    @action(detail=True, methods=["post"])
    def discount(self, request, pk=None):
        subscription = self.get_object()
        body = self._body(SubscriptionDiscountSerializer)
        return self._answer(
            services.subscription_discount_change(subscription=subscription, actor=request.auth, **body)
        )

    @extend_schema(
        operation_id="subscriptions_uncancel",
        request=None,
        responses=SubscriptionSerializer,
        description="Undo a cancellation at period end; 409 `not_canceling` if none is set.",
        **WRITE,
    )
    @action(detail=True, methods=["post"])
    def uncancel(self, request, pk=None):
        return self._answer(
            services.subscription_uncancel(subscription=self.get_object(), actor=request.auth)
        )

    @extend_schema(
        operation_id="subscriptions_revoke",
        request=SubscriptionRevokeSerializer,
        responses=SubscriptionSerializer,
        description="End the subscription now: benefits are revoked at once, unpaid orders are voided "
        "and dunning stops. Nothing is refunded to the card; with `credit`, the unused time of the "
        "paid current period goes to the customer's balance.",
        **WRITE,
    )
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        subscription = self.get_object()
        body = self._body(SubscriptionRevokeSerializer)
        return self._answer(
            services.subscription_revoke(subscription=subscription, actor=request.auth, **body)
        )

    @extend_schema(
        operation_id="subscriptions_revoke_preview",
        responses=SubscriptionRevokePreviewSerializer,
        description="The credit `revoke` with `credit` would give the customer's balance now. Writes nothing.",
    )
    @action(detail=True, methods=["get"], url_path="revoke/preview")
    def revoke_preview(self, request, pk=None):
        subscription = self.get_object()
        amount, tax = services.subscription_revoke_preview(subscription=subscription)
        return Response(
            SubscriptionRevokePreviewSerializer(
                {
                    "subscription_id": subscription.pk,
                    "currency": subscription.currency,
                    "credit_amount": amount,
                    "credit_tax": tax,
                }
            ).data
        )

    @extend_schema(
        operation_id="subscriptions_pause",
        request=None,
        responses=SubscriptionSerializer,
        description="Pause at the end of the current period: no renewals until resumed.",
        **WRITE,
    )
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        return self._answer(services.subscription_pause(subscription=self.get_object(), actor=request.auth))

    @extend_schema(
        operation_id="subscriptions_resume",
        request=None,
        responses=SubscriptionWithOrderSerializer,
        description="Undo a scheduled pause, or restart a paused subscription: a new period starts now "
        "and is billed at once (`order`).",
        **WRITE,
    )
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        subscription, order = services.subscription_resume(subscription=self.get_object(), actor=request.auth)
        return self._answer(subscription, order, with_order=True)

    @extend_schema(
        operation_id="subscriptions_trial_extend",
        request=SubscriptionTrialExtendSerializer,
        responses=SubscriptionSerializer,
        description="Move a trialing subscription's trial end (and first charge) later.",
        **WRITE,
    )
    @action(detail=True, methods=["post"])
    def trial(self, request, pk=None):
        subscription = self.get_object()
        body = self._body(SubscriptionTrialExtendSerializer)
        return self._answer(
            services.subscription_trial_extend(subscription=subscription, actor=request.auth, **body)
        )

    @extend_schema(
        operation_id="subscriptions_trial_end",
        request=None,
        responses=SubscriptionSerializer,
        description="End the trial now: the first period starts and is charged at once.",
        **WRITE,
    )
    @action(detail=True, methods=["post"], url_path="trial/end")
    def trial_end(self, request, pk=None):
        return self._answer(
            services.subscription_trial_end_now(subscription=self.get_object(), actor=request.auth)
        )
