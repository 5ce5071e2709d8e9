"""Backoffice pages for products (with their prices) and discounts (with their redemptions).

Every change goes through billing.catalog.services. Add and change forms call the service
while they validate (``ServiceModelForm``), so a rule the service enforces shows up as an
error on the form, on the field it concerns, and nothing is written.
"""

import re
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.core.exceptions import ValidationError
from django.db import models
from django.forms.models import construct_instance
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from billing.catalog import selectors, services
from billing.catalog.models import Discount, DiscountRedemption, Price, Product
from billing.money import InvalidAmount, Money, format_amount, is_supported_currency, parse_amount
from core import clock
from core.backoffice.actions import ModalAction, ModalActionsMixin
from core.backoffice.display import badge, when
from core.backoffice.search import IdSearchMixin
from core.errors import ServiceError

# --- shared ----------------------------------------------------------------------------------


def _adopt(obj: models.Model, saved: models.Model) -> None:
    """Make the admin's instance the row a service just created (same pk and values)."""
    for field in saved._meta.concrete_fields:
        setattr(obj, field.attname, getattr(saved, field.attname))
    obj._state.adding = False
    obj._state.db = saved._state.db


def _change_url(obj: models.Model) -> str:
    opts = obj._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[quote(obj.pk)])


def _changelist_url(model: type[models.Model], query: str = "") -> str:
    opts = model._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    return f"{url}?{query}" if query else url


def _add_service_error(form: forms.BaseForm, exc: ServiceError, field: str | None) -> None:
    form.add_error(field if field in form.fields else None, ValidationError(exc.detail, code=exc.code))


class ServiceModelForm(forms.ModelForm):
    """A ModelForm saved by a service call made at the end of validation: a refusal becomes
    a form error and the admin re-renders the form; success leaves the saved row in
    ``result``, which the admin adopts (see ``ServiceAdminMixin``)."""

    actor = None  # the operator, set per request by ServiceAdminMixin.get_form
    field_aliases: dict[str, str] = {}

    def call_service(self) -> models.Model:
        raise NotImplementedError

    def service_error_field(self, field: str | None) -> str | None:
        """The form field a service error names (``amounts.usd`` -> ``amounts``)."""
        if not field:
            return None
        base = re.match(r"[A-Za-z_]+", field)
        name = base.group(0) if base else field
        return self.field_aliases.get(name, name)

    def _post_clean(self):
        # ModelForm._post_clean builds the instance, then validates it against the model's
        # fields and constraints; here the service does all the validating, with its own
        # messages, so only the building is kept.
        try:
            self.instance = construct_instance(self, self.instance, self._meta.fields, self._meta.exclude)
        except ValidationError as exc:
            self._update_errors(exc)
        self.result = None
        if self.errors:
            return
        try:
            self.result = self.call_service()
        except ServiceError as exc:
            _add_service_error(self, exc, self.service_error_field(exc.field))


class ServiceAdminMixin(admin.ModelAdmin):
    """Saving is the form's service call; the admin only adopts its result."""

    add_form: type[ServiceModelForm]
    change_form: type[ServiceModelForm]

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = self.change_form if obj is not None else self.add_form
        form = super().get_form(request, obj, change=change, **kwargs)
        form.actor = request.user  # a fresh class per call: modelform_factory
        return form

    def save_model(self, request, obj, form, change):
        if form.result is not None:
            _adopt(obj, form.result)

    def save_related(self, request, form, formsets, change):
        pass  # the service wrote the relations


# --- prices ----------------------------------------------------------------------------------


def price_summary(price: Price) -> str:
    cur = price.currency
    if price.type == Price.Type.FIXED:
        return format_amount(price.amount, cur)
    if price.type == Price.Type.FREE:
        return f"free ({cur})"
    if price.type == Price.Type.CUSTOM:
        text = f"pay what you want ({cur}) from {format_amount(price.minimum_amount or 0, cur)}"
        if price.maximum_amount is not None:
            text += f" to {format_amount(price.maximum_amount, cur)}"
        return text
    if price.type == Price.Type.SEAT_BASED and price.seat_tiers:
        unit = format_amount(price.seat_tiers[0]["unit_amount"], cur)
        more = f", {len(price.seat_tiers)} {price.seat_tier_mode} tiers" if len(price.seat_tiers) > 1 else ""
        return f"{unit} per seat{more}"
    return f"{price.type} ({cur})"


def interval_display(product: Product) -> str:
    if not product.is_recurring:
        return "one-time"
    count = product.recurring_interval_count
    return f"every {count} {product.recurring_interval}{'s' if count != 1 else ''}"


class PriceForm(forms.Form):
    """One price, amounts in major units as people type them ("19.99")."""

    prefix_fields = ""  # "price_" in the product add form

    currency = forms.CharField(max_length=3, min_length=3, help_text="Lowercase ISO 4217 code, e.g. usd.")
    type = forms.ChoiceField(choices=Price.Type.choices)
    amount = forms.CharField(required=False, max_length=30, help_text="Fixed price, e.g. 19.99.")
    minimum_amount = forms.CharField(
        required=False, max_length=30, help_text="Pay what you want: the least (0 allows free)."
    )
    maximum_amount = forms.CharField(required=False, max_length=30, help_text="Pay what you want: the most.")
    preset_amount = forms.CharField(required=False, max_length=30, help_text="Pay what you want: suggested.")
    seat_tiers = forms.JSONField(
        required=False,
        help_text='Seat-based: amounts in minor units, e.g. [{"up_to": 10, "unit_amount": 800}, '
        '{"up_to": null, "unit_amount": 600}].',
    )
    seat_tier_mode = forms.ChoiceField(choices=[("", "—"), *Price.TierMode.choices], required=False)
    minimum_seats = forms.IntegerField(required=False, min_value=1)
    maximum_seats = forms.IntegerField(required=False, min_value=1)

    AMOUNT_FIELDS = ("amount", "minimum_amount", "maximum_amount", "preset_amount")
    SEAT_FIELDS = ("seat_tiers", "seat_tier_mode", "minimum_seats", "maximum_seats")


def price_from_cleaned(
    form: forms.BaseForm, cleaned: dict[str, Any], prefix: str = ""
) -> dict[str, Any] | None:
    """The service's price dict from a form's cleaned data; amount errors go on the form."""
    currency = (cleaned.get(f"{prefix}currency") or "").lower()
    if not is_supported_currency(currency):
        if f"{prefix}currency" in cleaned:
            form.add_error(f"{prefix}currency", "Unsupported currency.")
        return None
    price: dict[str, Any] = {"currency": currency, "type": cleaned.get(f"{prefix}type")}
    for name in PriceForm.AMOUNT_FIELDS:
        text = (cleaned.get(f"{prefix}{name}") or "").strip()
        if text:
            try:
                price[name] = parse_amount(text, currency)
            except InvalidAmount as exc:
                form.add_error(f"{prefix}{name}", str(exc))
    for name in PriceForm.SEAT_FIELDS:
        value = cleaned.get(f"{prefix}{name}")
        if value not in (None, "", []):
            price[name] = value
    return price


class SetPriceForm(PriceForm):
    def clean(self):
        cleaned = super().clean()
        if not self.errors:
            self.price = price_from_cleaned(self, cleaned)
        return cleaned


class SetPrice(ModalAction):
    name = "set_price"
    label = "Set a price"
    title = "Set a price"
    description = (
        "Adds a price in a new currency, or replaces the active price in that currency. A replaced "
        "price is archived: checkouts and subscriptions that use it keep it."
    )
    permission = "catalog.change_product"
    form_class = SetPriceForm
    submit_label = "Save price"
    success_message = "Price of “{object}” saved."

    def get_facts(self, request, obj: Product):
        return [("Active prices", " · ".join(price_summary(p) for p in obj.active_prices) or "—")]

    def perform(self, request, obj: Product, form: SetPriceForm) -> Product:
        new = form.price
        keep = [{"id": p.pk} for p in obj.active_prices if p.currency != new["currency"]]
        try:
            return services.product_update(product=obj, prices=[*keep, new], actor=request.user)
        except ServiceError as exc:
            match = re.match(r"prices\[\d+\]\.(\w+)", exc.field or "")
            exc.field = match.group(1) if match else exc.field
            raise


class RemovePriceForm(forms.Form):
    price = forms.ChoiceField(help_text="Archived: checkouts and subscriptions that use it keep it.")

    def __init__(self, *args, product: Product, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["price"].choices = [(str(p.pk), price_summary(p)) for p in product.active_prices]


class RemovePrice(ModalAction):
    name = "remove_price"
    label = "Remove a price"
    description = "Stops selling the product in that currency."
    permission = "catalog.change_product"
    form_class = RemovePriceForm
    submit_label = "Remove price"
    danger = True

    def is_available(self, request, obj: Product) -> bool:
        return len(obj.active_prices) > 1

    def get_form_kwargs(self, request, obj: Product):
        return {"product": obj}

    def perform(self, request, obj: Product, form: RemovePriceForm) -> Product:
        keep = [{"id": p.pk} for p in obj.active_prices if str(p.pk) != form.cleaned_data["price"]]
        return services.product_update(product=obj, prices=keep, actor=request.user)


# --- products --------------------------------------------------------------------------------

PRODUCT_FIELDS = ("name", "description", "recurring_interval", "recurring_interval_count", "metadata")


class ProductChangeForm(ServiceModelForm):
    class Meta:
        model = Product
        fields = PRODUCT_FIELDS

    def call_service(self) -> Product:
        changes = {f: self.cleaned_data[f] for f in self.changed_data if f in PRODUCT_FIELDS}
        if not changes:
            return self.instance
        if "recurring_interval" in changes:
            changes["recurring_interval"] = changes["recurring_interval"] or None
            changes.setdefault("recurring_interval_count", self.cleaned_data["recurring_interval_count"])
        return services.product_update(product=self.instance, actor=self.actor, **changes)


class ProductAddForm(ProductChangeForm):
    price_currency = forms.CharField(
        label="Currency", max_length=3, min_length=3, help_text="Lowercase ISO 4217 code, e.g. usd."
    )
    price_type = forms.ChoiceField(label="Type", choices=Price.Type.choices)
    price_amount = forms.CharField(
        label="Amount", required=False, max_length=30, help_text="Fixed: e.g. 19.99."
    )
    price_minimum_amount = forms.CharField(
        label="Minimum amount", required=False, max_length=30, help_text="Pay what you want (0 allows free)."
    )
    price_maximum_amount = forms.CharField(label="Maximum amount", required=False, max_length=30)
    price_preset_amount = forms.CharField(label="Suggested amount", required=False, max_length=30)
    price_seat_tiers = forms.JSONField(
        label="Seat tiers", required=False, help_text=PriceForm.base_fields["seat_tiers"].help_text
    )
    price_seat_tier_mode = forms.ChoiceField(
        label="Tier mode", choices=[("", "—"), *Price.TierMode.choices], required=False
    )
    price_minimum_seats = forms.IntegerField(label="Minimum seats", required=False, min_value=1)
    price_maximum_seats = forms.IntegerField(label="Maximum seats", required=False, min_value=1)

    class Meta:
        model = Product
        fields = ("organization", *PRODUCT_FIELDS)

    def service_error_field(self, field):
        match = re.match(r"prices\[\d+\]\.(\w+)", field or "")
        return f"price_{match.group(1)}" if match else super().service_error_field(field)

    def clean(self):
        cleaned = super().clean()
        self.price = None if self.errors else price_from_cleaned(self, cleaned, prefix="price_")
        return cleaned

    def call_service(self) -> Product:
        data = self.cleaned_data
        return services.product_create(
            organization=data["organization"],
            name=data["name"],
            description=data.get("description") or "",
            recurring_interval=data.get("recurring_interval") or None,
            recurring_interval_count=data.get("recurring_interval_count") or 1,
            metadata=data.get("metadata") or {},
            prices=[self.price],
            actor=self.actor,
        )


class ArchiveProduct(ModalAction):
    name = "archive"
    label = "Archive"
    title = "Archive product"
    description = "No new checkouts for this product. Existing subscriptions keep renewing."
    permission = "catalog.change_product"
    submit_label = "Archive"
    success_message = "“{object}” archived."

    def is_available(self, request, obj: Product) -> bool:
        return not obj.is_archived

    def perform(self, request, obj: Product, form) -> Product:
        return services.product_archive(product=obj, actor=request.user)


class UnarchiveProduct(ModalAction):
    name = "unarchive"
    label = "Unarchive"
    title = "Unarchive product"
    description = "Customers can buy this product again."
    permission = "catalog.change_product"
    submit_label = "Unarchive"
    success_message = "“{object}” is on sale again."

    def is_available(self, request, obj: Product) -> bool:
        return obj.is_archived

    def perform(self, request, obj: Product, form) -> Product:
        return services.product_unarchive(product=obj, actor=request.user)


class DeleteProduct(ModalAction):
    name = "delete_product"
    label = "Delete"
    title = "Delete product"
    description = "Only a product that was never sold can be deleted; archive a sold one."
    permission = "catalog.delete_product"
    submit_label = "Delete product"
    danger = True
    success_message = "“{object}” deleted."

    def perform(self, request, obj: Product, form) -> None:
        services.product_delete(product=obj, actor=request.user)

    def get_success_url(self, request, obj, result) -> str:
        return _changelist_url(Product)


class ProductKindFilter(admin.SimpleListFilter):
    title = "kind"
    parameter_name = "kind"

    def lookups(self, request, model_admin):
        return [("one_time", "One-time"), ("recurring", "Recurring")]

    def queryset(self, request, queryset):
        if self.value() == "one_time":
            return queryset.filter(recurring_interval__isnull=True)
        if self.value() == "recurring":
            return queryset.filter(recurring_interval__isnull=False)
        return queryset


@admin.register(Product)
class ProductAdmin(ServiceAdminMixin, ModalActionsMixin, IdSearchMixin, admin.ModelAdmin):
    add_form = ProductAddForm
    change_form = ProductChangeForm
    modal_actions = [SetPrice, RemovePrice, ArchiveProduct, UnarchiveProduct, DeleteProduct]
    list_display = ("name", "organization", "billing", "prices_summary", "status", "created")
    list_select_related = ("organization",)
    list_filter = ("is_archived", ProductKindFilter, "recurring_interval", "organization")
    search_fields = ("name",)
    search_help_text = "Product name, or paste an id."
    show_full_result_count = False
    autocomplete_fields = ("organization",)
    readonly_fields = (
        "organization_link",
        "status",
        "prices_table",
        "see_also",
        "id",
        "created_at",
        "updated_at",
    )

    def get_fieldsets(self, request, obj=None):
        product = ("name", "description", "recurring_interval", "recurring_interval_count", "metadata")
        if obj is None:
            price = tuple(f"price_{name}" for name in PriceForm.base_fields)
            return (
                (None, {"fields": ("organization", *product)}),
                (
                    "First price",
                    {"fields": price, "description": "Add more currencies from the product page."},
                ),
            )
        return (
            (None, {"fields": ("organization_link", "status", *product)}),
            ("Prices", {"fields": ("prices_table",)}),
            ("Record", {"fields": ("see_also", "id", "created_at", "updated_at")}),
        )

    def get_queryset(self, request):
        return selectors.products_with_prices(super().get_queryset(request))

    def has_delete_permission(self, request, obj=None):
        return False  # the Delete action goes through the service, which refuses sold products

    @admin.display(description="created", ordering="created_at")
    def created(self, product: Product):
        return when(product.created_at)

    @admin.display(description="billing", ordering="recurring_interval")
    def billing(self, product: Product) -> str:
        return interval_display(product)

    @admin.display(description="prices")
    def prices_summary(self, product: Product) -> str:
        return " · ".join(price_summary(p) for p in product.active_prices) or "—"

    @admin.display(description="status", ordering="is_archived")
    def status(self, product: Product):
        return badge("archived", "muted") if product.is_archived else badge("active", "good")

    @admin.display(description="organization")
    def organization_link(self, product: Product):
        return format_html('<a href="{}">{}</a>', _change_url(product.organization), product.organization)

    @admin.display(description="prices (active and archived)")
    def prices_table(self, product: Product):
        prices = Price.objects.filter(product=product).order_by("is_archived", "currency", "-created_at")
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class='bo-mono'>{}</td></tr>",
            (
                (
                    p.currency,
                    p.type,
                    price_summary(p),
                    badge("archived", "muted") if p.is_archived else badge("active", "good"),
                    when(p.created_at),
                    p.pk,
                )
                for p in prices
            ),
        )
        return format_html(
            "<table><thead><tr><th>currency</th><th>type</th><th>price</th><th>status</th><th>created</th>"
            "<th>id</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )

    @admin.display(description="see also")
    def see_also(self, product: Product):
        return format_html(
            '<a href="{}">Discounts for this product</a>',
            _changelist_url(Discount, f"products__id__exact={product.pk}"),
        )


# --- discounts -------------------------------------------------------------------------------

DISCOUNT_CHANGE_FIELDS = (
    "name",
    "code",
    "starts_at",
    "ends_at",
    "max_redemptions",
    "max_redemptions_per_customer",
    "products",
    "metadata",
)
DISCOUNT_ADD_FIELDS = (
    "organization",
    "name",
    "code",
    "type",
    "basis_points",
    "amounts",
    "duration",
    "duration_in_months",
    "starts_at",
    "ends_at",
    "max_redemptions",
    "max_redemptions_per_customer",
    "products",
    "metadata",
)


class DiscountChangeForm(ServiceModelForm):
    field_aliases = {"product_ids": "products"}

    class Meta:
        model = Discount
        fields = DISCOUNT_CHANGE_FIELDS

    def call_service(self) -> Discount:
        changes = {}
        for field in self.changed_data:
            if field == "products":
                changes["product_ids"] = [p.pk for p in self.cleaned_data["products"]]
            elif field in DISCOUNT_CHANGE_FIELDS:
                changes[field] = self.cleaned_data[field]
        if not changes:
            return self.instance
        return services.discount_update(discount=self.instance, actor=self.actor, **changes)


class DiscountAddForm(ServiceModelForm):
    field_aliases = {"product_ids": "products"}

    class Meta:
        model = Discount
        fields = DISCOUNT_ADD_FIELDS
        help_texts = {
            "basis_points": "Percentage discounts: 2500 = 25%.",
            "amounts": 'Fixed discounts, in minor units per currency: {"usd": 500} is usd 5.00 off.',
            "code": "What customers type at checkout: 3 to 64 letters, digits, - or _.",
        }

    def call_service(self) -> Discount:
        data = self.cleaned_data
        return services.discount_create(
            organization=data["organization"],
            name=data["name"],
            type=data["type"],
            basis_points=data.get("basis_points"),
            amounts=data.get("amounts") or None,
            duration=data["duration"],
            duration_in_months=data.get("duration_in_months"),
            code=data.get("code") or None,
            starts_at=data.get("starts_at"),
            ends_at=data.get("ends_at"),
            max_redemptions=data.get("max_redemptions"),
            max_redemptions_per_customer=data.get("max_redemptions_per_customer"),
            product_ids=[p.pk for p in data.get("products") or ()],
            metadata=data.get("metadata") or {},
            actor=self.actor,
        )


def discount_amount_display(discount: Discount) -> str:
    if discount.type == Discount.Type.PERCENTAGE:
        text = f"{Decimal(discount.basis_points or 0) / 100:f}"
        return (text.rstrip("0").rstrip(".") if "." in text else text) + "%"
    return " · ".join(str(Money(amount, currency)) for currency, amount in sorted(discount.amounts.items()))


def discount_duration_display(discount: Discount) -> str:
    if discount.duration == Discount.Duration.REPEATING:
        months = discount.duration_in_months
        return f"{months} month{'s' if months != 1 else ''}"
    return discount.duration


class ArchiveDiscount(ModalAction):
    name = "archive"
    label = "Archive"
    title = "Archive discount"
    description = "The code stops working for new checkouts. Subscriptions that have it keep it."
    permission = "catalog.change_discount"
    submit_label = "Archive"
    success_message = "“{object}” archived."

    def is_available(self, request, obj: Discount) -> bool:
        return not obj.is_archived

    def perform(self, request, obj: Discount, form) -> Discount:
        return services.discount_archive(discount=obj, actor=request.user)


class UnarchiveDiscount(ModalAction):
    name = "unarchive"
    label = "Unarchive"
    title = "Unarchive discount"
    description = "The code works again (within its validity window and limits)."
    permission = "catalog.change_discount"
    submit_label = "Unarchive"
    success_message = "“{object}” works again."

    def is_available(self, request, obj: Discount) -> bool:
        return obj.is_archived

    def perform(self, request, obj: Discount, form) -> Discount:
        return services.discount_unarchive(discount=obj, actor=request.user)


class DeleteDiscount(ModalAction):
    name = "delete_discount"
    label = "Delete"
    title = "Delete discount"
    description = "Only a discount nobody used can be deleted; archive a used one."
    permission = "catalog.delete_discount"
    submit_label = "Delete discount"
    danger = True
    success_message = "“{object}” deleted."

    def perform(self, request, obj: Discount, form) -> None:
        services.discount_delete(discount=obj, actor=request.user)

    def get_success_url(self, request, obj, result) -> str:
        return _changelist_url(Discount)


class DiscountStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [
            ("active", "Active"),
            ("scheduled", "Not started"),
            ("expired", "Expired"),
            ("archived", "Archived"),
        ]

    def queryset(self, request, queryset):
        now = clock.now()
        live = queryset.filter(is_archived=False)
        if self.value() == "active":
            return live.exclude(starts_at__gt=now).exclude(ends_at__lte=now)
        if self.value() == "scheduled":
            return live.filter(starts_at__gt=now)
        if self.value() == "expired":
            return live.filter(ends_at__lte=now)
        if self.value() == "archived":
            return queryset.filter(is_archived=True)
        return queryset


@admin.register(Discount)
class DiscountAdmin(ServiceAdminMixin, ModalActionsMixin, IdSearchMixin, admin.ModelAdmin):
    add_form = DiscountAddForm
    change_form = DiscountChangeForm
    modal_actions = [ArchiveDiscount, UnarchiveDiscount, DeleteDiscount]
    list_display = (
        "code_display",
        "name",
        "organization",
        "amount",
        "duration_display",
        "redemptions",
        "validity",
        "status",
    )
    list_display_links = ("code_display", "name")
    list_select_related = ("organization",)
    list_filter = (DiscountStatusFilter, "type", "duration", "organization")
    search_fields = ("code", "name")
    search_help_text = "Code or name, or paste an id."
    show_full_result_count = False
    autocomplete_fields = ("organization", "products")
    readonly_fields = (
        "organization_link",
        "status",
        "type",
        "amount",
        "duration_display",
        "redemptions",
        "redemptions_table",
        "id",
        "created_at",
        "updated_at",
    )

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return ((None, {"fields": DISCOUNT_ADD_FIELDS}),)
        return (
            (
                None,
                {
                    "fields": (
                        "organization_link",
                        "status",
                        "name",
                        "code",
                        "type",
                        "amount",
                        "duration_display",
                    )
                },
            ),
            (
                "Limits",
                {
                    "fields": (
                        "starts_at",
                        "ends_at",
                        "max_redemptions",
                        "max_redemptions_per_customer",
                        "products",
                    )
                },
            ),
            ("Redemptions", {"fields": ("redemptions", "redemptions_table")}),
            ("Record", {"fields": ("metadata", "id", "created_at", "updated_at")}),
        )

    def get_queryset(self, request):
        return selectors.discounts_with_usage(super().get_queryset(request))

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.readonly_fields

    def lookup_allowed(self, lookup, value, request=None):
        # The product page links to the discounts restricted to it.
        return lookup == "products__id__exact" or super().lookup_allowed(lookup, value, request)

    def has_delete_permission(self, request, obj=None):
        return False  # the Delete action goes through the service, which refuses used discounts

    @admin.display(description="code", ordering="code")
    def code_display(self, discount: Discount):
        return format_html('<span class="bo-mono">{}</span>', discount.code) if discount.code else "—"

    @admin.display(description="amount")
    def amount(self, discount: Discount) -> str:
        return discount_amount_display(discount)

    @admin.display(description="duration", ordering="duration")
    def duration_display(self, discount: Discount) -> str:
        return discount_duration_display(discount)

    @admin.display(description="redemptions", ordering="redemptions_count")
    def redemptions(self, discount: Discount) -> str:
        limit = "∞" if discount.max_redemptions is None else f"{discount.max_redemptions:,}"
        return f"{discount.redemptions_count:,} / {limit}"

    @admin.display(description="valid")
    def validity(self, discount: Discount):
        if discount.starts_at is None and discount.ends_at is None:
            return "always"
        return format_html(
            "{} → {}",
            when(discount.starts_at) if discount.starts_at else "…",
            when(discount.ends_at) if discount.ends_at else "…",
        )

    @admin.display(description="status")
    def status(self, discount: Discount):
        now = clock.now()
        if discount.is_archived:
            return badge("archived", "muted")
        if discount.ends_at is not None and discount.ends_at <= now:
            return badge("expired", "muted")
        if discount.starts_at is not None and discount.starts_at > now:
            return badge("not started", "info")
        if discount.max_redemptions is not None and discount.redemptions_count >= discount.max_redemptions:
            return badge("used up", "warn")
        return badge("active", "good")

    @admin.display(description="organization")
    def organization_link(self, discount: Discount):
        return format_html('<a href="{}">{}</a>', _change_url(discount.organization), discount.organization)

    @admin.display(description="latest redemptions")
    def redemptions_table(self, discount: Discount):
        redemptions = (
            DiscountRedemption.objects.filter(discount=discount)
            .select_related("customer")
            .order_by("-created_at")[:50]
        )
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class='bo-mono'>{}</td></tr>",
            (
                (
                    when(r.created_at),
                    format_html('<a href="{}">{}</a>', _change_url(r.customer), r.customer_email)
                    if r.customer_id
                    else r.customer_email,
                    badge(r.status, "good" if r.status == DiscountRedemption.Status.REDEEMED else "info"),
                    r.checkout_id or "—",
                )
                for r in redemptions
            ),
        )
        if not rows:
            return "none yet"
        return format_html(
            "<table><thead><tr><th>when</th><th>customer</th><th>status</th><th>checkout</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            rows,
        )
