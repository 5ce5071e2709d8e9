"""Backoffice: orders (read-only: services write them), their invoice PDF, the revenue card.

Also the pieces the other billing pages share (checkouts and subscriptions import them):
amounts blocks, payment tables, the currency filter, per-currency totals for dashboard
cards and the customer e-mail search.
"""

import re
from datetime import timedelta
from fractions import Fraction

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Sum
from django.http import Http404, HttpResponse
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.http import urlencode

from accounts.backoffice import EMAIL_RE, CustomerEmailSearchMixin
from billing.catalog.models import Price
from billing.money import format_amount, get_currency
from billing.orders.models import Order
from billing.orders.selectors import order_payments
from billing.orders.services import order_payment_hold_release
from billing.payments.admin import payment_status_badge
from billing.payments.backoffice import PAID_FOR, Link, PaidFor
from billing.payments.models import Payment
from core import clock
from core.admin import ReadOnlyAdmin
from core.backoffice.actions import ModalAction, ModalActionsMixin
from core.backoffice.dashboard import Metric, dashboard
from core.backoffice.display import address_block, admin_url, badge, pretty_json, when
from core.backoffice.timeline import admin_change_url, tax_rate_label

ORDER_TONES = {
    "paid": "good",
    "pending": "warn",
    "partially_refunded": "info",
    "refunded": "muted",
    "void": "muted",
}
PAID_STATUSES = Order.PAID_STATUSES
BILLING_CSS = "backoffice/billing_change_form.html"  # the change form with the billing tables' styles


# --- shared display pieces -----------------------------------------------------------------


def link_to(app_label: str, model_name: str, pk, label) -> str:
    url = admin_change_url(app_label, model_name, pk)
    return format_html('<a href="{}">{}</a>', url, label) if url else str(label)


def when_field(name: str, description: str):
    """A read-only column or detail field showing the datetime ``name`` in UTC, like lists do."""

    @admin.display(description=description, ordering=name)
    def display(self, obj):
        return when(getattr(obj, name))

    return display


def nowrap(text: str) -> str:
    return format_html('<span style="white-space: nowrap">{}</span>', text)


def tax_note(obj) -> str:
    """What the tax line means: ``20% · included in the price``, ``0% · reverse charge``."""
    parts = [tax_rate_label(obj.tax_rate_bps)]
    if obj.reverse_charge:
        parts.append("reverse charge")
    elif obj.tax_inclusive:
        parts.append("included in the price")
    else:
        parts.append("added to the price")
    return " · ".join(parts)


def amounts_block(obj, extra_rows: list[tuple[str, str, int]] = ()) -> str:
    """Subtotal, discount, net, tax and total of a checkout or an order, formatted; then
    ``extra_rows`` of (label, note, amount)."""
    currency = obj.currency
    rows = [
        ("Subtotal", "", format_amount(obj.subtotal, currency), False),
        (
            "Discount",
            str(obj.discount) if obj.discount_id else "",
            f"\N{MINUS SIGN}{format_amount(obj.discount_amount, currency)}"
            if obj.discount_amount
            else format_amount(0, currency),
            False,
        ),
        ("Net", "", format_amount(obj.net, currency), False),
        ("Tax", tax_note(obj), format_amount(obj.tax, currency), False),
        ("Total", currency.upper(), format_amount(obj.total, currency), True),
    ]
    rows += [(label, note, format_amount(amount, currency), False) for label, note, amount in extra_rows]
    return render_to_string("backoffice/amounts.html", {"rows": rows})


def payment_rows(payments) -> list[dict]:
    """What the payment tables show of each attempt."""
    return [
        {
            "payment": payment,
            "url": admin_change_url("payments", "payment", payment.pk),
            "status": payment_status_badge(payment),
            "amount": format_amount(payment.amount, payment.currency),
            "refunded": format_amount(payment.amount_refunded, payment.currency)
            if payment.amount_refunded
            else "",
            "when": when(payment.created_at),
        }
        for payment in payments
    ]


def payments_table(payments) -> str:
    """Payment attempts with their status, amount and decline message."""
    return render_to_string("backoffice/payments_table.html", {"rows": payment_rows(payments)})


class CurrencyFilter(admin.SimpleListFilter):
    """Currencies from the catalog's prices (a small table), not a DISTINCT over every row."""

    title = "currency"
    parameter_name = "currency"

    def lookups(self, request, model_admin):
        codes = set(Price.objects.order_by().values_list("currency", flat=True).distinct())
        if self.value():
            codes.add(self.value().lower())
        return [(code, code.upper()) for code in sorted(codes)]

    def queryset(self, request, queryset):
        return queryset.filter(currency=self.value().lower()) if self.value() else queryset


def currency_totals_metric(totals: dict[str, int], *, hint: str, url: str | None) -> Metric:
    """A money card from per-currency totals: the largest (in major units, there are no
    exchange rates here) as the value, the others listed in the hint."""
    if not totals:
        return Metric("0", hint=hint, url=url)

    def major(item: tuple[str, int]) -> Fraction:
        currency, amount = item
        return Fraction(amount, 10 ** get_currency(currency).exponent)

    ranked = sorted(totals.items(), key=lambda item: (-major(item), item[0]))
    (currency, amount), others = ranked[0], ranked[1:]
    if others:
        hint = f"{hint} · also " + ", ".join(format_amount(a, c) for c, a in others)
    return Metric(format_amount(amount, currency), hint=hint, url=url)


def order_label(order: Order) -> str:
    """The invoice number, or what the order is while it has none: ``pending order · $24.00``."""
    if order.invoice_number:
        return order.invoice_number
    return f"{order.get_status_display().lower()} order · {format_amount(order.total, order.currency)}"


def subscription_link(subscription) -> Link | None:
    if subscription is None:
        return None
    return Link(f"{subscription.product.name} subscription", admin_url(subscription))


def orders_paid_for(ids: list) -> dict:
    """``PAID_FOR["order"]``: each order with its product and subscription, one query."""
    orders = Order.objects.filter(pk__in=ids).select_related("product", "subscription__product")
    found = {}
    for order in orders:
        order_link = Link(order_label(order), admin_url(order))
        product = Link(order.product.name, admin_url(order.product)) if order.product_id else None
        found[order.pk] = PaidFor(
            what=order_link,
            order=order_link,
            product=product,
            subscription=subscription_link(order.subscription),
        )
    return found


PAID_FOR["order"] = orders_paid_for


# --- dashboard -----------------------------------------------------------------------------


@dashboard.card("revenue_30d", title="Revenue · 30 days", order=30, permission="orders.view_order")
def revenue_card(request) -> Metric:
    since = clock.now() - timedelta(days=30)
    rows = (
        Order.objects.filter(paid_at__gte=since, status__in=PAID_STATUSES)
        .order_by()
        .values("currency")
        .annotate(total=Sum("total"), n=Count("id"))
    )
    totals = {row["currency"]: row["total"] for row in rows}
    count = sum(row["n"] for row in rows)
    url = reverse("admin:orders_order_changelist") + "?" + urlencode({"paid_at__gte": since.isoformat()})
    return currency_totals_metric(totals, hint=f"{count:,} paid order{'s' if count != 1 else ''}", url=url)


# --- orders --------------------------------------------------------------------------------


class RetryPayment(ModalAction):
    """Charge an unpaid order now (``order_payment_retry``, which writes the audit entry)."""

    name = "retry_payment"
    label = "Retry payment"
    title = "Retry the payment now"
    description = (
        "Charges the amount due now with the customer's default payment method. Automatic dunning "
        "attempts are not used up."
    )
    permission = "orders.change_order"
    submit_label = "Charge now"

    def is_available(self, request, obj: Order) -> bool:
        return obj.status == Order.Status.PENDING and obj.due > 0 and not obj.payment_hold

    def get_facts(self, request, obj: Order):
        last = order_payments(obj).order_by("-created_at", "-attempt").first()
        last_text = "none"
        if last is not None:
            last_text = f"{last.status} ({format_amount(last.amount, last.currency)})"
            if last.decline_code:
                last_text += f": {last.decline_message or last.decline_code}"
        return [
            ("Customer", obj.customer.email),
            ("Amount due", format_amount(obj.due, obj.currency)),
            ("Payment method", obj.customer.default_payment_method_id or "none on file"),
            ("Last attempt", last_text),
            ("Next automatic attempt", when(obj.next_payment_attempt_at)),
        ]

    def perform(self, request, obj: Order, form):
        from billing.orders.collection import order_payment_retry

        return order_payment_retry(order=obj, actor=request.user)

    def get_success_message(self, request, obj: Order, result: Payment | None) -> str:
        if result is None:
            return "Nothing to charge: the order is no longer unpaid."
        result.refresh_from_db()
        amount = format_amount(result.amount, result.currency)
        if result.status == Payment.Status.SUCCEEDED:
            return f"Payment of {amount} succeeded."
        if result.status == Payment.Status.FAILED:
            why = (result.decline_message or result.decline_code or "declined").rstrip(".")
            return f"Payment of {amount} failed: {why}."
        return f"Payment of {amount} is {result.status.replace('_', ' ')}."


class ReleaseHoldForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="What was done about the held payment (e.g. refunded in full at Stripe). Audited.",
    )


class ReleasePaymentHold(ModalAction):
    """Resume collection of an order whose payment was held (``order_payment_hold_release``)."""

    name = "release_payment_hold"
    label = "Release payment hold"
    title = "Release the payment hold"
    description = (
        "The processor took another amount or currency than this order asked for, so collection "
        "stopped. First refund that payment in full at the processor; releasing the hold then "
        "charges the amount due again with a new attempt. The held payment never counts as paying the order."
    )
    permission = "orders.change_order"
    form_class = ReleaseHoldForm
    submit_label = "Release and collect again"
    danger = True

    def is_available(self, request, obj: Order) -> bool:
        return bool(obj.payment_hold)

    def get_facts(self, request, obj: Order):
        return [
            ("Why it is held", obj.payment_hold),
            ("Amount due", format_amount(obj.due, obj.currency)),
            ("Customer", obj.customer.email),
        ]

    def perform(self, request, obj: Order, form):
        return order_payment_hold_release(order=obj, actor=request.user, reason=form.cleaned_data["reason"])

    def get_success_message(self, request, obj: Order, result) -> str:
        return "Hold released: the amount due will be charged again."


class HeldOrderFilter(admin.SimpleListFilter):
    title = "payment held"
    parameter_name = "payment_held"

    def lookups(self, request, model_admin):
        return [("yes", "Held for review")]

    def queryset(self, request, queryset):
        return queryset.exclude(payment_hold="") if self.value() == "yes" else queryset


# Sections of the order page that apps above orders fill in from their own admin modules
# (refunds, disputes: ``ORDER_PAGE_SECTIONS["refunds"] = refunds_table``), and the actions
# they add (``OrderAdmin.modal_actions``): orders never import them.
ORDER_PAGE_SECTIONS: dict = {}


def _section(name: str, order: Order) -> str:
    render = ORDER_PAGE_SECTIONS.get(name)
    return render(order) if render is not None else "—"


@admin.register(Order)
class OrderAdmin(ModalActionsMixin, CustomerEmailSearchMixin, ReadOnlyAdmin):
    change_form_template = BILLING_CSS
    modal_actions = [RetryPayment, ReleasePaymentHold]  # refunds add "Refund"
    list_display = (
        "created",
        "invoice",
        "status_badge",
        "reason",
        "customer_email",
        "total_display",
        "paid",
        "organization",
    )
    list_display_links = ("created", "invoice")
    list_filter = (
        "status",
        HeldOrderFilter,
        "billing_reason",
        ("created_at", admin.DateFieldListFilter),
        ("paid_at", admin.DateFieldListFilter),
        CurrencyFilter,
    )
    list_select_related = ("customer", "organization")
    search_fields = ("customer__email",)
    search_help_text = "An invoice number or an order id (exact), or the customer's e-mail."
    show_full_result_count = False
    list_per_page = 50
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "invoice_number",
                    "status_badge",
                    "payment_hold_flag",
                    "billing_reason",
                    "organization",
                    "customer",
                    "invoice_pdf",
                )
            },
        ),
        ("Amounts", {"fields": ("amounts",)}),
        ("Items", {"fields": ("items_table",)}),
        ("Payments", {"fields": ("payments",)}),
        ("Refunds", {"fields": ("refunds",)}),
        ("Disputes", {"fields": ("disputes",)}),
        (
            "Came from",
            {"fields": ("checkout", "subscription", "product", "discount", "period")},
        ),
        ("Billed to", {"fields": ("billing_name", "billing_address_pretty", "customer_tax_id")}),
        ("Record", {"fields": ("id", "created", "paid", "updated", "metadata_pretty")}),
    )

    def get_urls(self):
        return [
            path(
                "<path:object_id>/invoice.pdf",
                self.admin_site.admin_view(self.invoice_pdf_view),
                name="orders_order_invoice_pdf",
            ),
            *super().get_urls(),
        ]

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if term and not EMAIL_RE.match(term) and "@" not in term:
            by_number = queryset.filter(invoice_number__in={term, term.upper()})
            if by_number.exists():
                return by_number, False
        return super().get_search_results(request, queryset, search_term)

    def invoice_pdf_view(self, request, object_id):
        if not request.user.has_perm("orders.view_order"):
            raise PermissionDenied
        order = self.get_object(request, unquote(object_id))
        if order is None:
            raise Http404("No such order.")
        try:
            from billing.orders.invoice_pdf import render_invoice_pdf
        except ModuleNotFoundError as exc:
            if exc.name != "billing.orders.invoice_pdf":
                raise
            return HttpResponse("Invoice PDFs are not available yet.", status=503, content_type="text/plain")
        response = HttpResponse(render_invoice_pdf(order), content_type="application/pdf")
        filename = re.sub(r"[^A-Za-z0-9._-]", "_", order.invoice_number or f"order-{order.pk}")
        response["Content-Disposition"] = f'inline; filename="{filename}.pdf"'
        return response

    # --- list columns

    @admin.display(description="created", ordering="created_at")
    def created(self, order: Order):
        return when(order.created_at)

    @admin.display(description="invoice", ordering="invoice_number")
    def invoice(self, order: Order):
        if order.invoice_number:
            return nowrap(order.invoice_number)
        return format_html('<span class="bo-quiet" title="{}">—</span>', "not numbered yet")

    @admin.display(description="status", ordering="status")
    def status_badge(self, order: Order):
        status = order.get_status_display().lower()
        if order.payment_hold:
            return badge(f"{status} · payment held", "bad")
        return badge(status, ORDER_TONES.get(order.status, "muted"))

    @admin.display(description="payment held")
    def payment_hold_flag(self, order: Order):
        if not order.payment_hold:
            return "—"
        return format_html("{} {}", badge("held for review", "bad"), order.payment_hold)

    @admin.display(description="billing reason", ordering="billing_reason")
    def reason(self, order: Order):
        return nowrap(order.get_billing_reason_display().lower())

    @admin.display(description="customer", ordering="customer__email")
    def customer_email(self, order: Order) -> str:
        return order.customer.email

    @admin.display(description="total", ordering="total")
    def total_display(self, order: Order) -> str:
        return format_amount(order.total, order.currency)

    @admin.display(description="paid at", ordering="paid_at")
    def paid(self, order: Order):
        return when(order.paid_at)

    # --- detail

    updated = when_field("updated_at", "updated")

    @admin.display(description="period")
    def period(self, order: Order):
        if order.period_start is None:
            return "—"
        return format_html("{} → {}", when(order.period_start), when(order.period_end))

    @admin.display(description="invoice")
    def invoice_pdf(self, order: Order):
        url = reverse("admin:orders_order_invoice_pdf", args=[quote(order.pk)])
        return format_html('<a class="bo-button" href="{}" target="_blank">Download invoice (PDF)</a>', url)

    @admin.display(description="amounts")
    def amounts(self, order: Order):
        balance = order.applied_balance - order.carried_forward
        extra = [("Customer balance applied", "", -balance)] if balance else []
        if order.carried_forward:
            extra.append(("Below the minimum charge: carried to the next order", "", -order.carried_forward))
        if order.status == Order.Status.PENDING or order.applied_balance:
            extra.append(("Amount due", "", order.due))
        if order.refunded_amount:
            extra.append(("Refunded", "", order.refunded_amount))
        extra.append(("Platform fee", "", order.platform_fee))
        return amounts_block(order, extra)

    @admin.display(description="items")
    def items_table(self, order: Order):
        items = [
            {"item": item, "amount": format_amount(item.amount, order.currency)}
            for item in order.items.order_by("created_at", "id")
        ]
        return render_to_string("backoffice/order_items.html", {"items": items})

    @admin.display(description="payments")
    def payments(self, order: Order):
        return payments_table(order_payments(order).order_by("created_at", "attempt"))

    @admin.display(description="refunds")
    def refunds(self, order: Order):
        return _section("refunds", order)

    @admin.display(description="disputes")
    def disputes(self, order: Order):
        return _section("disputes", order)

    @admin.display(description="billing address")
    def billing_address_pretty(self, order: Order):
        return address_block(order.billing_address)

    @admin.display(description="metadata")
    def metadata_pretty(self, order: Order):
        return pretty_json(order.metadata) if order.metadata else "—"


def payments_for(references: list[str]) -> dict[str, list[Payment]]:
    """Payments by reference, in attempt order: one query for many orders or checkouts."""
    grouped: dict[str, list[Payment]] = {ref: [] for ref in references}
    for payment in Payment.objects.filter(reference__in=references).order_by("created_at", "attempt"):
        grouped[payment.reference].append(payment)
    return grouped
