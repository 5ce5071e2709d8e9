"""Backoffice: checkouts (read-only: the checkout services write them).

A checkout's ``client_secret`` authorises paying for it: it is never shown, searched or
filtered on here.
"""

from django.contrib import admin
from django.db.models import Q
from django.utils.html import format_html, format_html_join

from accounts.selectors import email_equals
from billing.checkout.models import Checkout
from billing.money import format_amount
from billing.orders.admin import (
    BILLING_CSS,
    CurrencyFilter,
    CustomerEmailSearchMixin,
    amounts_block,
    link_to,
    order_label,
    payments_table,
    subscription_link,
    when_field,
)
from billing.orders.models import Order
from billing.payments.backoffice import PAID_FOR, Link, PaidFor
from billing.payments.models import Payment
from billing.subscriptions.models import Subscription
from core.admin import ReadOnlyAdmin
from core.backoffice.display import (
    address_block,
    admin_link,
    admin_url,
    badge,
    customer_label,
    pretty_json,
    when,
)

CHECKOUT_TONES = {
    "open": "info",
    "confirmed": "warn",
    "succeeded": "good",
    "failed": "bad",
    "expired": "muted",
}
SECRET_FIELDS = frozenset({"client_secret"})


def checkouts_paid_for(ids: list) -> dict:
    """``PAID_FOR["checkout"]``: each checkout with its product and, once it succeeded, its
    order and subscription; one query."""
    checkouts = Checkout.objects.filter(pk__in=ids).select_related(
        "product", "order", "order__subscription__product"
    )
    found = {}
    for checkout in checkouts:
        order = getattr(checkout, "order", None)
        found[checkout.pk] = PaidFor(
            what=Link(f"checkout of {checkout.product.name}", admin_url(checkout)),
            order=Link(order_label(order), admin_url(order)) if order is not None else None,
            product=Link(checkout.product.name, admin_url(checkout.product)),
            subscription=subscription_link(order.subscription) if order is not None else None,
        )
    return found


PAID_FOR["checkout"] = checkouts_paid_for


@admin.register(Checkout)
class CheckoutAdmin(CustomerEmailSearchMixin, ReadOnlyAdmin):
    change_form_template = BILLING_CSS
    list_display = (
        "created",
        "status_badge",
        "product_link",
        "customer_display",
        "total_display",
        "order_display",
        "expires",
        "organization",
    )
    list_display_links = ("created",)
    list_filter = ("status", ("created_at", admin.DateFieldListFilter), CurrencyFilter)
    # The order a succeeded checkout became, and its subscription, in the same query.
    list_select_related = ("product", "customer", "organization", "order__subscription__product")
    search_fields = ("customer_email", "customer__email")
    search_help_text = "A checkout id (exact), or the customer's e-mail."
    show_full_result_count = False
    list_per_page = 50
    exclude = ("client_secret",)
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "status_badge",
                    "organization",
                    "product_link",
                    "price",
                    "seats",
                    "custom_amount_display",
                    "trial_days",
                    "expires",
                    "payment_error",
                )
            },
        ),
        (
            "Customer",
            {
                "fields": (
                    "customer_display",
                    "customer_email",
                    "customer_name",
                    "is_business",
                    "customer_tax_id",
                    "billing_address_pretty",
                )
            },
        ),
        ("Amounts", {"fields": ("discount", "amounts")}),
        ("Payment attempts", {"fields": ("payments",)}),
        ("Result", {"fields": ("result",)}),
        (
            "Record",
            {
                "fields": (
                    "id",
                    "created",
                    "confirmed",
                    "succeeded",
                    "success_url",
                    "metadata_pretty",
                )
            },
        ),
    )

    def lookup_allowed(self, lookup, value, request=None):
        # ?client_secret__startswith=... would let anyone with the list probe secrets.
        if any(part in SECRET_FIELDS for part in lookup.split("__")):
            return False
        return super().lookup_allowed(lookup, value, request)

    def email_match(self, email: str) -> Q:
        # Before confirmation a checkout only has the e-mail the buyer typed.
        return super().email_match(email) | Q(email_equals("customer_email", email), customer__isnull=True)

    def text_match(self, word: str) -> Q:
        return super().text_match(word) | Q(customer__isnull=True, customer_email__icontains=word)

    # --- list columns

    @admin.display(description="created", ordering="created_at")
    def created(self, checkout: Checkout):
        return when(checkout.created_at)

    @admin.display(description="status", ordering="status")
    def status_badge(self, checkout: Checkout):
        return badge(checkout.status, CHECKOUT_TONES.get(checkout.status, "muted"))

    @admin.display(description="customer")
    def customer_display(self, checkout: Checkout):
        if checkout.customer_id is not None:
            return admin_link(checkout.customer, customer_label(checkout.customer))
        return checkout.customer_email or "—"

    @admin.display(description="order")
    def order_display(self, checkout: Checkout):
        order = getattr(checkout, "order", None)
        if order is None:
            return "—"
        links = [Link(order_label(order), admin_url(order))]
        if order.subscription_id:
            links.append(subscription_link(order.subscription))
        return format_html_join(" · ", "{}", ((link.html(),) for link in links))

    @admin.display(description="product", ordering="product__name")
    def product_link(self, checkout: Checkout):
        return admin_link(checkout.product, checkout.product.name)

    @admin.display(description="total", ordering="total")
    def total_display(self, checkout: Checkout) -> str:
        return format_amount(checkout.total, checkout.currency)

    @admin.display(description="expires", ordering="expires_at")
    def expires(self, checkout: Checkout):
        return when(checkout.expires_at)

    # --- detail

    confirmed = when_field("confirmed_at", "confirmed at")
    succeeded = when_field("succeeded_at", "succeeded at")

    @admin.display(description="amount chosen")
    def custom_amount_display(self, checkout: Checkout) -> str:
        if checkout.custom_amount is None:
            return "—"
        return format_amount(checkout.custom_amount, checkout.currency)

    @admin.display(description="amounts")
    def amounts(self, checkout: Checkout):
        return amounts_block(checkout)

    @admin.display(description="payments")
    def payments(self, checkout: Checkout):
        return payments_table(Payment.objects.filter(reference=checkout.reference).order_by("attempt"))

    @admin.display(description="order and subscription")
    def result(self, checkout: Checkout):
        links = []
        order = Order.objects.filter(checkout=checkout).only("id", "invoice_number", "status").first()
        if order is not None:
            links.append(("order", link_to("orders", "order", order.pk, str(order)), order.status))
        subscription = Subscription.objects.filter(checkout=checkout).only("id", "status").first()
        if subscription is not None:
            label = f"{checkout.product.name} subscription"
            links.append(
                (
                    "subscription",
                    link_to("subscriptions", "subscription", subscription.pk, label),
                    subscription.status,
                )
            )
        if not links:
            return format_html(
                '<span class="bo-empty">{}</span>', "None yet: the checkout has not succeeded."
            )
        return format_html(
            '<div class="bo-links">{}</div>',
            format_html_join("", '<span>{}: {} <span class="bo-quiet">({})</span></span>', links),
        )

    @admin.display(description="billing address")
    def billing_address_pretty(self, checkout: Checkout):
        return address_block(checkout.billing_address)

    @admin.display(description="metadata")
    def metadata_pretty(self, checkout: Checkout):
        return pretty_json(checkout.metadata) if checkout.metadata else "—"
