"""/v1/balance and /v1/ledger/transactions: the merchant's money as the ledger records it."""

import django_filters
from django.db.models import Exists, OuterRef, Prefetch
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.ledger import selectors
from billing.ledger.models import LedgerAccount, LedgerEntry, LedgerTransaction
from core import clock
from core.api.filters import DateTimeFilter
from core.api.viewsets import IdempotentMixin, OrganizationScopedViewSet

Kind = LedgerAccount.Kind


class BalanceBreakdownSerializer(serializers.Serializer):
    hold_started_at = serializers.DateTimeField(
        help_text="`as_of` less `payout_hold_days`: money in after this instant is still held."
    )
    settled = serializers.IntegerField(
        help_text="The balance as it stood at `hold_started_at`: everything older than the hold."
    )
    held = serializers.IntegerField(
        help_text="Money in since `hold_started_at` (payments, refunds or disputes given back, "
        "credits): not available until the hold has passed. Equals `pending`."
    )
    refunds = serializers.IntegerField(
        help_text="Refunds since `hold_started_at` (zero or negative): they count at once."
    )
    disputes = serializers.IntegerField(
        help_text="Disputed amounts withdrawn and dispute fees since `hold_started_at` (zero or "
        "negative): they count at once."
    )
    payouts = serializers.IntegerField(help_text="Payouts since `hold_started_at` (zero or negative).")
    other = serializers.IntegerField(
        help_text="Other money out since `hold_started_at` (zero or negative): balance adjustments "
        "and customer wallet credits the organization funded."
    )


class CurrencyBalanceSerializer(serializers.Serializer):
    currency = serializers.CharField(help_text="Lowercase ISO 4217 code.")
    balance = serializers.IntegerField(
        help_text="What the platform owes the organization in this currency (minor units)."
    )
    available = serializers.IntegerField(
        help_text="The part of the balance older than the payout hold: what can be paid out now. "
        "Money out (refunds, disputes, payouts) counts at once, so it never exceeds the balance."
    )
    pending = serializers.IntegerField(help_text="balance - available: money still inside the payout hold.")
    in_transit = serializers.IntegerField(help_text="Paid out and on its way to the bank account.")
    breakdown = BalanceBreakdownSerializer(
        help_text="Why `available` is what it is: `available = settled + refunds + disputes + payouts "
        "+ other` and `balance = available + held`. A negative `available` is money out (refunds, "
        "disputes) beyond what had settled while the payments that cover it are still `held`."
    )


class BalanceSerializer(serializers.Serializer):
    object = serializers.CharField(default="balance", help_text="Always `balance`.")
    as_of = serializers.DateTimeField(help_text="The instant the balances were computed for.")
    payout_hold_days = serializers.IntegerField(
        help_text="Days money stays pending before it becomes available."
    )
    balances = CurrencyBalanceSerializer(
        many=True, help_text="One entry per currency the organization has a balance in, by currency."
    )


class BalanceView(IdempotentMixin, APIView):
    """The organization's balance per currency."""

    scope_resource = "ledger"

    @extend_schema(
        operation_id="balance_retrieve",
        responses=BalanceSerializer,
        description="The organization's balance per currency: `balance` (everything the ledger owes "
        "it), `available` (older than the payout hold of `payout_hold_days`), `pending` "
        "(`balance - available`) and `in_transit` (paid out, not arrived), with the `breakdown` that "
        "explains `available`: `settled + refunds + disputes + payouts + other`. Amounts in minor units.",
    )
    def get(self, request):
        organization = request.auth.organization
        now = clock.now()
        data = {
            "object": "balance",
            "as_of": now,
            "payout_hold_days": organization.payout_hold_days,
            "balances": selectors.organization_balances(organization, now),
        }
        return Response(BalanceSerializer(data).data)


class LedgerEntrySerializer(serializers.ModelSerializer):
    account = serializers.CharField(
        source="account.kind",
        help_text="The account's kind: processor_cash, tax_payable, platform_revenue, processor_fees, "
        "merchant_balance, merchant_payouts_in_transit, customer_wallet or adjustments.",
    )
    amount = serializers.IntegerField(help_text="Signed minor units: positive debits, negative credits.")

    class Meta:
        model = LedgerEntry
        fields = ["account", "currency", "amount"]
        read_only_fields = fields


class LedgerTransactionSerializer(serializers.ModelSerializer):
    type = serializers.CharField(
        help_text="payment, processor_fee, refund, refund_reversal, dispute, dispute_reversal, "
        "dispute_fee, payout, payout_reversal, balance_adjustment, wallet_credit ..."
    )
    order_id = serializers.UUIDField(read_only=True, allow_null=True)
    payment_id = serializers.UUIDField(read_only=True, allow_null=True)
    refund_id = serializers.UUIDField(read_only=True, allow_null=True)
    dispute_id = serializers.UUIDField(read_only=True, allow_null=True)
    customer_id = serializers.UUIDField(read_only=True, allow_null=True)
    merchant_amount = serializers.SerializerMethodField(
        help_text="How the transaction moved the organization's balance: positive when the balance "
        "went up, negative when it went down, 0 when it did not touch it (a processor fee)."
    )
    currency = serializers.SerializerMethodField(help_text="The currency of the transaction.")
    entries = LedgerEntrySerializer(many=True, read_only=True)

    class Meta:
        model = LedgerTransaction
        fields = [
            "id", "type", "created_at", "description", "order_id", "payment_id", "refund_id",
            "dispute_id", "customer_id", "merchant_amount", "currency", "entries",
        ]  # fmt: skip
        read_only_fields = fields

    @staticmethod
    def _merchant_entry(ledger_tx: LedgerTransaction) -> LedgerEntry | None:
        return next((e for e in ledger_tx.entries.all() if e.account.kind == Kind.MERCHANT_BALANCE), None)

    def get_merchant_amount(self, ledger_tx: LedgerTransaction) -> int:
        entry = self._merchant_entry(ledger_tx)
        return -entry.amount if entry is not None else 0

    def get_currency(self, ledger_tx: LedgerTransaction) -> str:
        entry = self._merchant_entry(ledger_tx)
        if entry is None:
            entry = next(iter(ledger_tx.entries.all()), None)
        return entry.currency if entry is not None else ""


class LedgerTransactionFilter(django_filters.FilterSet):
    type = django_filters.MultipleChoiceFilter(
        choices=LedgerTransaction.Type.choices, help_text="Repeat to match any of several types."
    )
    created_after = DateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = DateTimeFilter(field_name="created_at", lookup_expr="lt")
    order_id = django_filters.UUIDFilter(field_name="order_id")
    currency = django_filters.CharFilter(method="filter_currency", help_text="Lowercase ISO 4217 code.")

    class Meta:
        model = LedgerTransaction
        fields = ["type", "order_id"]

    def filter_currency(self, queryset, name, value):
        entries = LedgerEntry.objects.filter(transaction=OuterRef("pk"), currency=value.lower())
        return queryset.filter(Exists(entries))


@extend_schema_view(
    list=extend_schema(
        operation_id="ledger_transactions_list",
        description="The organization's ledger transactions, newest first, each with its entries. "
        "`merchant_amount` is what the transaction did to the organization's balance.",
    ),
    retrieve=extend_schema(operation_id="ledger_transactions_retrieve"),
)
class LedgerTransactionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationScopedViewSet):
    """Ledger transactions: every movement of the organization's money."""

    scope_resource = "ledger"
    queryset = LedgerTransaction.objects.prefetch_related(
        Prefetch("entries", queryset=LedgerEntry.objects.select_related("account").order_by("id"))
    )
    serializer_class = LedgerTransactionSerializer
    filterset_class = LedgerTransactionFilter
