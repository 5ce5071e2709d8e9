"""Backoffice: disputes (read-only: ``charge.dispute.*`` events write them) and the
"Disputes needing response" dashboard card."""

from datetime import timedelta

from django.contrib import admin
from django.db.models import Count, Q, Sum
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import urlencode

from billing.disputes.backoffice import (
    AWAITING_RESPONSE,
    SOON_DAYS,
    disputes_table,
    evidence_due,
    status_badge,
)
from billing.disputes.models import Dispute
from billing.ledger.models import LedgerTransaction
from billing.money import format_amount
from billing.orders.admin import (
    BILLING_CSS,
    EMAIL_RE,
    ORDER_PAGE_SECTIONS,
    CurrencyFilter,
    CustomerEmailSearchMixin,
    link_to,
    nowrap,
    when_field,
)
from core import clock
from core.admin import ReadOnlyAdmin
from core.backoffice.dashboard import Metric, dashboard
from core.backoffice.display import pretty_json, when
from core.backoffice.timeline import admin_change_url, order_label

ORDER_PAGE_SECTIONS["disputes"] = disputes_table  # the order page's disputes section

S = Dispute.Status
AWAITING = "awaiting_response"
# Stripe's dispute reasons (a fixed list: no DISTINCT over the table for the filter).
REASONS = (
    "bank_cannot_process",
    "check_returned",
    "credit_not_processed",
    "customer_initiated",
    "debit_not_authorized",
    "duplicate",
    "fraudulent",
    "general",
    "incorrect_account_details",
    "insufficient_funds",
    "noncompliant",
    "product_not_received",
    "product_unacceptable",
    "subscription_canceled",
    "unrecognized",
)
PROCESSOR_ID_PREFIXES = ("dp_", "du_", "ch_", "py_", "pi_")
FEE_SOURCES = {
    "processor": "charged by Stripe (its balance transaction)",
    "organization": "the organization's dispute fee (manual payment); given back if won",
}


# --- dashboard -----------------------------------------------------------------------------


@dashboard.card(
    "disputes_needing_response",
    title="Disputes needing response",
    order=45,
    permission="disputes.view_dispute",
)
def disputes_needing_response_card(request) -> Metric:
    soon = clock.now() + timedelta(days=SOON_DAYS)
    rows = list(
        Dispute.objects.filter(status__in=AWAITING_RESPONSE)
        .order_by()
        .values("currency")
        .annotate(
            total=Sum("amount"),
            n=Count("id"),
            due_soon=Count("id", filter=Q(evidence_due_by__lt=soon)),
        )
    )
    count = sum(row["n"] for row in rows)
    url = reverse("admin:disputes_dispute_changelist") + "?" + urlencode({"status": AWAITING})
    if not count:
        return Metric("0", hint="no evidence to submit", url=url, tone="good")
    amounts = ", ".join(
        format_amount(row["total"], row["currency"]) for row in sorted(rows, key=lambda r: r["currency"])
    )
    due_soon = sum(row["due_soon"] for row in rows)
    hint = f"{amounts} disputed"
    if due_soon:
        hint += f" · {due_soon} due within {SOON_DAYS} days or overdue"
    return Metric(f"{count:,}", hint=hint, url=url, tone="bad" if due_soon else "warn")


# --- list filters ---------------------------------------------------------------------------


class StatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [(AWAITING, "needing response (any)")] + [(value, label.lower()) for value, label in S.choices]

    def queryset(self, request, queryset):
        value = self.value()
        if value == AWAITING:
            return queryset.filter(status__in=AWAITING_RESPONSE)
        if value in S.values:
            return queryset.filter(status=value)
        return queryset


class ReasonFilter(admin.SimpleListFilter):
    title = "reason"
    parameter_name = "reason"

    def lookups(self, request, model_admin):
        return [(reason, reason.replace("_", " ")) for reason in REASONS]

    def queryset(self, request, queryset):
        return queryset.filter(reason=self.value()) if self.value() else queryset


# --- disputes -------------------------------------------------------------------------------


@admin.register(Dispute)
class DisputeAdmin(CustomerEmailSearchMixin, ReadOnlyAdmin):
    change_form_template = BILLING_CSS
    list_display = (
        "created",
        "processor_id",
        "status_display",
        "amount_display",
        "reason_display",
        "order_link",
        "customer_email",
        "evidence_due_display",
        "organization",
    )
    list_display_links = ("created", "processor_id")
    list_filter = (StatusFilter, ReasonFilter, CurrencyFilter, ("created_at", admin.DateFieldListFilter))
    list_select_related = ("order", "customer", "organization")
    search_fields = ("customer__email",)
    search_help_text = (
        "A dispute, charge or PaymentIntent id, an order's invoice number, a dispute id (exact), "
        "or the customer's e-mail."
    )
    show_full_result_count = False
    list_per_page = 50
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "processor_dispute_id",
                    "status_display",
                    "reason_display",
                    "organization",
                    "order_link",
                    "customer_link",
                    "payment_link",
                )
            },
        ),
        ("Money", {"fields": ("money",)}),
        ("Evidence", {"fields": ("evidence_due_display",)}),
        (
            "What happened",
            {"fields": ("opened", "funds_withdrawn", "funds_reinstated", "closed", "access_revoked")},
        ),
        ("Ledger postings", {"fields": ("postings",)}),
        ("Processor", {"fields": ("processor_charge_id", "state_at", "snapshot_pretty")}),
        ("Record", {"fields": ("id", "updated")}),
    )

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if term.startswith(PROCESSOR_ID_PREFIXES):
            match = (
                Q(processor_dispute_id=term)
                | Q(processor_charge_id=term)
                | Q(payment__processor_payment_id=term)
            )
            return queryset.filter(match), False
        if term and not EMAIL_RE.match(term) and "@" not in term:
            by_number = queryset.filter(order__invoice_number__in={term, term.upper()})
            if by_number.exists():
                return by_number, False
        return super().get_search_results(request, queryset, search_term)

    # --- list columns

    @admin.display(description="opened", ordering="created_at")
    def created(self, dispute: Dispute):
        return when(dispute.created_at)

    @admin.display(description="dispute", ordering="processor_dispute_id")
    def processor_id(self, dispute: Dispute):
        return format_html('<span class="bo-mono">{}</span>', dispute.processor_dispute_id)

    @admin.display(description="status", ordering="status")
    def status_display(self, dispute: Dispute):
        return status_badge(dispute)

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, dispute: Dispute) -> str:
        return nowrap(format_amount(dispute.amount, dispute.currency))

    @admin.display(description="reason", ordering="reason")
    def reason_display(self, dispute: Dispute) -> str:
        return dispute.reason.replace("_", " ") if dispute.reason else "—"

    @admin.display(description="order", ordering="order__invoice_number")
    def order_link(self, dispute: Dispute):
        if dispute.order_id is None:
            return "—"
        return link_to("orders", "order", dispute.order_id, order_label(dispute.order))

    @admin.display(description="customer", ordering="customer__email")
    def customer_email(self, dispute: Dispute) -> str:
        return dispute.customer.email if dispute.customer_id else "—"

    @admin.display(description="evidence due", ordering="evidence_due_by")
    def evidence_due_display(self, dispute: Dispute):
        return evidence_due(dispute)

    # --- detail

    opened = when_field("created_at", "opened (first event)")
    funds_withdrawn = when_field("funds_withdrawn_at", "funds withdrawn")
    funds_reinstated = when_field("funds_reinstated_at", "funds reinstated")
    closed = when_field("closed_at", "closed")
    access_revoked = when_field("access_revoked_at", "access revoked")
    state_at = when_field("processor_state_at", "newest snapshot applied")
    updated = when_field("updated_at", "updated")

    @admin.display(description="customer")
    def customer_link(self, dispute: Dispute):
        if dispute.customer_id is None:
            return "—"
        return link_to("accounts", "customer", dispute.customer_id, dispute.customer.email)

    @admin.display(description="payment")
    def payment_link(self, dispute: Dispute):
        if dispute.payment_id is None:
            return "—"
        payment = dispute.payment
        return link_to(
            "payments",
            "payment",
            payment.pk,
            f"{payment} · {payment.processor_payment_id or '—'}",
        )

    @admin.display(description="money")
    def money(self, dispute: Dispute):
        currency = dispute.currency

        def amount(value: int) -> str:
            return format_amount(value, currency)

        rows = [("Disputed amount", currency.upper(), amount(dispute.amount), True)]
        if dispute.funds_withdrawn_at is None:
            note = "inquiry: no money moves" if dispute.status.startswith("warning_") else "not withdrawn yet"
            rows.append(("Funds withdrawn", note, "—", False))
        else:
            merchant = dispute.amount - dispute.tax_amount
            rows += [
                ("Tax part", "taken back from tax payable", amount(dispute.tax_amount), False),
                ("Merchant's part", "taken from the merchant's balance", amount(merchant), False),
                (
                    "Dispute fee",
                    FEE_SOURCES.get(dispute.fee_source, "not known yet"),
                    format_amount(dispute.fee, dispute.fee_currency or currency),
                    False,
                ),
                ("Merchant's balance lost", "", f"\N{MINUS SIGN}{amount(merchant + dispute.fee)}", True),
            ]
            if dispute.funds_reinstated_at is not None:
                rows.append(("Reinstated", "won: the amount came back", amount(merchant), False))
                fee_back = format_amount(dispute.fee_refunded, dispute.fee_currency or currency)
                rows.append(("Fee given back", "won: as far as the processor gave it back", fee_back, False))
            if dispute.access_note:
                rows.append(("Access", dispute.access_note, "", False))
        return render_to_string("backoffice/amounts.html", {"rows": rows})

    @admin.display(description="ledger postings")
    def postings(self, dispute: Dispute):
        transactions = (
            LedgerTransaction.objects.filter(dispute=dispute)
            .prefetch_related("entries__account__organization", "entries__account__customer")
            .order_by("created_at", "id")
        )
        rows = []
        for tx in transactions:
            entries = []
            for entry in tx.entries.all():
                account = entry.account
                owner = (
                    account.customer.email
                    if account.customer_id
                    else (account.organization.name if account.organization_id else "platform")
                )
                money = format_amount(abs(entry.amount), entry.currency)
                entries.append(
                    {
                        "kind": account.kind,
                        "account": f"{account.get_kind_display().lower()} · {owner}",
                        "debit": money if entry.amount > 0 else "",
                        "credit": money if entry.amount < 0 else "",
                    }
                )
            rows.append(
                {
                    "pk": tx.pk,
                    "when": when(tx.created_at),
                    "type": tx.get_type_display().lower(),
                    "url": admin_change_url("ledger", "ledgertransaction", tx.pk),
                    "description": tx.description,
                    "key": tx.idempotency_key,
                    "entries": entries,
                }
            )
        return render_to_string("backoffice/disputes/postings.html", {"transactions": rows})

    @admin.display(description="latest snapshot")
    def snapshot_pretty(self, dispute: Dispute):
        return pretty_json(dispute.snapshot) if dispute.snapshot else "—"
