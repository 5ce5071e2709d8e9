"""Backoffice: refunds, read-only (the refund services write them; operators refund from the
order page). Search by refund or order id, invoice number or processor refund id."""

from django.contrib import admin
from django.db.models import Q

from billing.money import format_amount
from billing.orders.admin import (
    BILLING_CSS,
    ORDER_PAGE_SECTIONS,
    CurrencyFilter,
    OrderAdmin,
    link_to,
    nowrap,
    when_field,
)
from billing.refunds.backoffice import REFUND_TONES, RefundOrder, refunds_table
from billing.refunds.models import Refund
from core.admin import ReadOnlyAdmin
from core.backoffice.display import badge, when
from core.backoffice.search import parse_uuid

# The order page's refunds section and its "Refund" action (orders do not import refunds).
ORDER_PAGE_SECTIONS["refunds"] = refunds_table
OrderAdmin.modal_actions = [*OrderAdmin.modal_actions, RefundOrder]


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdmin):
    change_form_template = BILLING_CSS
    list_display = (
        "created",
        "status_badge",
        "order_link",
        "customer_email",
        "amount_display",
        "reason_display",
        "origin",
        "organization",
    )
    list_display_links = ("created",)
    list_filter = ("status", "reason", CurrencyFilter, "origin", ("created_at", admin.DateFieldListFilter))
    list_select_related = ("order", "customer", "organization")
    search_fields = ("=processor_refund_id",)  # shows the search box; see get_search_results
    search_help_text = "A refund or order id, an invoice number or a processor refund id (exact)."
    show_full_result_count = False
    list_per_page = 50
    fieldsets = (
        (
            None,
            {"fields": ("status_badge", "organization", "order_link", "customer", "payment", "origin")},
        ),
        (
            "Amounts",
            {"fields": ("amount_display", "card_display", "wallet_display", "tax_display", "currency")},
        ),
        ("Why", {"fields": ("reason_display", "comment", "revoke_benefits", "created_by")}),
        (
            "Processor",
            {"fields": ("processor_refund_id", "failure_reason", "submitted", "processor_state", "settled")},
        ),
        ("Record", {"fields": ("id", "created", "updated")}),
    )

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        found = parse_uuid(term)
        if found is not None:
            return queryset.filter(Q(pk=found) | Q(order_id=found)), False
        return queryset.filter(
            Q(order__invoice_number__in={term, term.upper()}) | Q(processor_refund_id=term)
        ), False

    @admin.display(description="created", ordering="created_at")
    def created(self, refund: Refund):
        return when(refund.created_at)

    updated = when_field("updated_at", "updated")
    submitted = when_field("submitted_at", "submitted to the processor")
    processor_state = when_field("processor_state_at", "latest processor report")

    @admin.display(description="settled")
    def settled(self, refund: Refund):
        return when(refund.succeeded_at or refund.failed_at)

    @admin.display(description="status", ordering="status")
    def status_badge(self, refund: Refund):
        return badge(refund.status, REFUND_TONES.get(refund.status, "muted"))

    @admin.display(description="order", ordering="order__invoice_number")
    def order_link(self, refund: Refund):
        return link_to("orders", "order", refund.order_id, str(refund.order))

    @admin.display(description="customer", ordering="customer__email")
    def customer_email(self, refund: Refund) -> str:
        return refund.customer.email

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, refund: Refund):
        return nowrap(format_amount(refund.amount, refund.currency))

    @admin.display(description="to the card")
    def card_display(self, refund: Refund) -> str:
        return format_amount(refund.card_amount, refund.currency)

    @admin.display(description="to the customer's balance")
    def wallet_display(self, refund: Refund) -> str:
        return format_amount(refund.wallet_amount, refund.currency)

    @admin.display(description="tax given back")
    def tax_display(self, refund: Refund) -> str:
        return format_amount(refund.tax_amount, refund.currency)

    @admin.display(description="reason", ordering="reason")
    def reason_display(self, refund: Refund) -> str:
        return refund.get_reason_display().lower()
