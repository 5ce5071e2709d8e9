"""Backoffice pages for users, organizations, customers and access tokens.

Every change goes through accounts.services (which validate and write the audit log);
this module only turns forms into service calls.
"""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import quote
from django.contrib.admin.widgets import AutocompleteSelect
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm
from django.contrib.auth.forms import UserChangeForm as DjangoUserChangeForm
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import Q
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.html import format_html, format_html_join
from django.utils.text import smart_split, unescape_string_literal

from accounts import services
from accounts.metadata import customer_metadata_problem
from accounts.models import AccessToken, Customer, Membership, Organization, User
from accounts.selectors import customers_matching
from billing.money import InvalidAmount, format_amount, is_supported_currency, parse_amount
from core import clock
from core.addresses import ADDRESS_PARTS, AddressInvalid, address_clean, country_choices
from core.api.scopes import ALL_SCOPES
from core.backoffice.actions import ModalAction, ModalActionsMixin, form_add_service_error
from core.backoffice.dashboard import Metric, dashboard
from core.backoffice.display import badge, when
from core.backoffice.search import IdSearchMixin, parse_uuid
from core.errors import ServiceError
from core.models import AuditEntry


def _changelist_url(model: type[models.Model], query: str = "") -> str:
    opts = model._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    return f"{url}?{query}" if query else url


def _adopt(obj: models.Model, saved: models.Model) -> None:
    """Make the admin's instance the row a service just created (same pk and values)."""
    for field in saved._meta.concrete_fields:
        setattr(obj, field.attname, getattr(saved, field.attname))
    obj._state.adding = False
    obj._state.db = saved._state.db


# --- dashboard cards -------------------------------------------------------------------


@dashboard.card("organizations", title="Organizations", order=110, permission="accounts.view_organization")
def organizations_card(request) -> Metric:
    return Metric(f"{Organization.objects.count():,}", hint="merchants", url=_changelist_url(Organization))


@dashboard.card("customers", title="Customers", order=120, permission="accounts.view_customer")
def customers_card(request) -> Metric:
    return Metric(f"{Customer.objects.count():,}", hint="across all merchants", url=_changelist_url(Customer))


def _active_tokens() -> models.QuerySet:
    return AccessToken.objects.filter(revoked_at__isnull=True).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=clock.now())
    )


@dashboard.card("access_tokens", title="Active API tokens", order=130, permission="accounts.view_accesstoken")
def access_tokens_card(request) -> Metric:
    return Metric(
        f"{_active_tokens().count():,}",
        hint="not revoked, not expired",
        url=_changelist_url(AccessToken, "status=active"),
    )


# --- users -----------------------------------------------------------------------------


class UserCreationForm(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email",)

    def clean_email(self) -> str:
        email = User.objects.normalize_email(self.cleaned_data["email"]).lower()
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError("A user with this email already exists.", code="unique")
        return email


class UserChangeForm(DjangoUserChangeForm):
    class Meta:
        model = User
        fields = "__all__"

    def clean_email(self) -> str:
        email = User.objects.normalize_email(self.cleaned_data["email"]).lower()
        if User.objects.filter(email__iexact=email).exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError("A user with this email already exists.", code="unique")
        return email


class UserMembershipInline(admin.TabularInline):
    model = Membership
    fk_name = "user"
    fields = ("organization", "role", "created_at")
    readonly_fields = ("created_at",)
    autocomplete_fields = ("organization",)
    extra = 0
    verbose_name = "organization membership"


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = UserChangeForm
    add_form = UserCreationForm
    ordering = ("email",)
    list_display = ("email", "full_name", "is_staff", "is_superuser", "is_active", "roles", "last_login")
    list_filter = ("is_staff", "is_superuser", "is_active", "groups")
    search_fields = ("email", "full_name")
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Personal info", {"fields": ("full_name",)}),
        (
            "Backoffice access",
            {
                "fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions"),
                "description": "Staff users log into the backoffice; their groups (support, finance, "
                "admin) decide what they see and do.",
            },
        ),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("email", "usable_password", "password1", "password2")}),
    )
    readonly_fields = ("last_login", "date_joined")
    inlines = [UserMembershipInline]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("groups")

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []

    @admin.display(description="roles")
    def roles(self, user: User) -> str:
        return ", ".join(sorted(group.name for group in user.groups.all())) or "—"


# --- organizations ---------------------------------------------------------------------


class MembershipInline(admin.TabularInline):
    model = Membership
    fk_name = "organization"
    fields = ("user", "role", "created_at")
    readonly_fields = ("created_at",)
    autocomplete_fields = ("user",)
    extra = 0


# --- manual adjustments (merchant balance, customer wallet) ---------------------------------------

ADJUST_BALANCE = "ledger.adjust_balance"


class AdjustmentForm(forms.Form):
    amount = forms.CharField(
        max_length=30,
        help_text="In major units, e.g. 12.50; negative (-12.50) to debit.",
    )
    currency = forms.CharField(max_length=3, min_length=3, help_text="Lowercase ISO code, e.g. usd.")
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=2000,
        help_text="Required; recorded in the audit log with your name.",
    )

    def clean_currency(self) -> str:
        currency = self.cleaned_data["currency"].strip().lower()
        if not is_supported_currency(currency):
            raise forms.ValidationError("Unsupported currency.", code="invalid_currency")
        return currency

    def clean(self):
        cleaned = super().clean()
        text, currency = cleaned.get("amount"), cleaned.get("currency")
        if text and currency:
            try:
                cleaned["amount_minor"] = parse_amount(text, currency)
            except InvalidAmount as exc:
                self.add_error("amount", str(exc))
        return cleaned

    def adjustment_arguments(self) -> dict:
        data = self.cleaned_data
        return {"amount": data["amount_minor"], "currency": data["currency"], "reason": data["reason"]}


class AdjustMerchantBalance(ModalAction):
    name = "adjust_balance"
    label = "Adjust balance"
    title = "Adjust the merchant's balance"
    description = (
        "A manual correction of what the platform owes this merchant: a positive amount credits the "
        "balance, a negative one debits it. Posted to the ledger against the platform's adjustments "
        "account and audited with your reason."
    )
    permission = ADJUST_BALANCE
    form_class = AdjustmentForm
    submit_label = "Post adjustment"

    def get_initial(self, request, obj: Organization):
        return {"currency": obj.default_currency}

    def get_facts(self, request, obj: Organization):
        from billing.ledger.selectors import merchant_balance

        currency = obj.default_currency
        return [
            ("Organization", obj.name),
            (f"Balance ({currency})", format_amount(merchant_balance(obj, currency), currency)),
        ]

    def perform(self, request, obj: Organization, form: AdjustmentForm):
        from billing.ledger.adjustments import balance_adjust

        return balance_adjust(organization=obj, actor=request.user, **form.adjustment_arguments())

    def get_success_message(self, request, obj, result) -> str:
        return f"Posted: {result.description}."


class AdjustCustomerWallet(ModalAction):
    name = "adjust_wallet"
    label = "Adjust wallet"
    title = "Adjust the customer's wallet"
    description = (
        "Credits (positive amount) or debits (negative) the customer's balance, which pays their next "
        "orders. The merchant's balance funds a credit and gets a debit back. A debit cannot take more "
        "than is available (pending orders keep what they reserved)."
    )
    permission = ADJUST_BALANCE
    form_class = AdjustmentForm
    submit_label = "Adjust wallet"

    def get_initial(self, request, obj: Customer):
        return {"currency": obj.organization.default_currency}

    def get_facts(self, request, obj: Customer):
        facts: list[tuple[str, Any]] = [("Customer", obj.email), ("Organization", obj.organization.name)]
        for b in wallet_balances_of(obj):
            facts.append(
                (
                    f"Wallet ({b.currency})",
                    f"{format_amount(b.balance, b.currency)} · available {format_amount(b.available, b.currency)}",
                )
            )
        return facts

    def perform(self, request, obj: Customer, form: AdjustmentForm):
        from billing.ledger.wallet import wallet_adjust

        return wallet_adjust(customer=obj, actor=request.user, **form.adjustment_arguments())

    def get_success_message(self, request, obj, result) -> str:
        return f"Posted: {result.description}."


def wallet_balances_of(customer: Customer):
    from billing.ledger.wallet import wallet_balances

    return wallet_balances(customer)


class OrganizationForm(forms.ModelForm):
    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        existing = services.organization_named(name) if self.instance._state.adding else None
        if existing is not None:
            raise forms.ValidationError(f"An organization named {existing.name!r} already exists.")
        return name


def balance_row(row: dict) -> dict:
    """One currency of ``organization_balances``, formatted, with what explains ``available``."""
    currency = row["currency"]
    money = lambda amount: format_amount(amount, currency)  # noqa: E731
    parts = row["breakdown"]
    taken = [
        (label, money(parts[name]))
        for name, label in (
            ("refunds", "refunds"),
            ("disputes", "disputes"),
            ("payouts", "payouts"),
            ("other", "adjustments and wallet credits"),
        )
        if parts[name]
    ]
    return {
        "currency": currency,
        "balance": money(row["balance"]),
        "available": money(row["available"]),
        "negative": row["available"] < 0,
        "pending": money(row["pending"]),
        "in_transit": money(row["in_transit"]),
        "settled": money(parts["settled"]),
        "hold_started_at": parts["hold_started_at"],
        "taken": taken,
    }


@admin.register(Organization)
class OrganizationAdmin(ModalActionsMixin, IdSearchMixin, admin.ModelAdmin):
    form = OrganizationForm
    modal_actions = [AdjustMerchantBalance]
    list_display = ("name", "slug", "default_currency", "invoice_prefix", "platform_fee", "created")
    search_fields = ("name", "slug", "email", "invoice_prefix")
    list_filter = ("default_currency",)
    ordering = ("name",)
    inlines = [MembershipInline]
    fieldsets = (
        (None, {"fields": ("name", "slug", "email", "related")}),
        ("Invoicing", {"fields": ("default_currency", "invoice_prefix", "invoice_next_number")}),
        (
            "Platform fee",
            {
                "fields": ("platform_fee_bps", "platform_fee_fixed", "platform_fee_display"),
                "description": "Taken from every payment.",
            },
        ),
        ("Payments and payouts", {"fields": ("payment_processor", "payout_hold_days")}),
        (
            "Disputes",
            {
                "fields": (
                    "dispute_fee",
                    "dispute_fee_display",
                    "dispute_revokes_access",
                    "dispute_won_restores_access",
                )
            },
        ),
        ("Subscriptions", {"fields": ("proration_default", "dunning_schedule", "benefit_grace_days")}),
        ("Record", {"fields": ("id", "created_at", "updated_at"), "classes": ("collapse",)}),
    )
    readonly_fields = (
        "related",
        "merchant_balance",
        "platform_fee_display",
        "dispute_fee_display",
        "invoice_next_number",
        "id",
        "created_at",
        "updated_at",
    )

    def get_fieldsets(self, request, obj=None):
        fieldsets = list(super().get_fieldsets(request, obj))
        if obj is None:
            return fieldsets
        # The money the platform owes the merchant, right under who the merchant is.
        return [fieldsets[0], ("Balance", {"fields": ("merchant_balance",)}), *fieldsets[1:]]

    def get_prepopulated_fields(self, request, obj=None):
        return {} if obj is not None else {"slug": ("name",)}

    def get_readonly_fields(self, request, obj=None):
        fields = tuple(super().get_readonly_fields(request, obj))
        return (*fields, "slug") if obj is not None else fields

    def has_delete_permission(self, request, obj=None):
        # Deleting a merchant would cascade through its customers, orders and ledger.
        return False

    @admin.display(description="created", ordering="created_at")
    def created(self, org: Organization):
        return when(org.created_at)

    @admin.display(description="platform fee")
    def platform_fee(self, org: Organization) -> str:
        fixed = format_amount(org.platform_fee_fixed, org.default_currency)
        return f"{org.platform_fee_bps / 100:g}% + {fixed}"

    @admin.display(description="per payment")
    def platform_fee_display(self, org: Organization) -> str:
        if org.pk is None or org._state.adding:
            return "—"
        currency = org.default_currency
        return (
            f"{self.platform_fee(org)} per {currency.upper()} payment "
            "(the fixed part is in minor units of each payment's currency)"
        )

    @admin.display(description="as charged")
    def dispute_fee_display(self, org: Organization) -> str:
        if org.pk is None or org._state.adding:
            return "—"
        currency = org.default_currency
        return (
            f"{format_amount(org.dispute_fee, currency)} per {currency.upper()} dispute of a manual payment"
        )

    @admin.display(description="merchant balance")
    def merchant_balance(self, org: Organization):
        from billing.ledger.selectors import organization_balances

        rows = organization_balances(org, clock.now())
        if not rows:
            return format_html('<span class="bo-empty">{}</span>', "No balance yet: nothing sold.")
        return render_to_string(
            "backoffice/merchant_balance.html",
            {"rows": [balance_row(row) for row in rows], "hold_days": org.payout_hold_days},
        )

    @admin.display(description="see also")
    def related(self, org: Organization):
        if org.pk is None or org._state.adding:
            return "—"
        query = f"organization__id__exact={org.pk}"
        return format_html(
            '<a href="{}">Customers</a> · <a href="{}">Access tokens</a> · '
            '<a href="{}?organization={}">New access token</a> · <a href="{}">Audit log</a> · '
            '<a href="{}?organization={}">Ledger statement</a>',
            _changelist_url(Customer, query),
            _changelist_url(AccessToken, query),
            reverse("admin:accounts_accesstoken_add"),
            org.pk,
            _changelist_url(AuditEntry, f"q={org.pk}"),
            reverse("admin:ledger_statement"),
            org.pk,
        )

    def save_model(self, request, obj, form, change):
        settings = {f: form.cleaned_data[f] for f in services.ORGANIZATION_SETTINGS if f in form.cleaned_data}
        if change:
            changes = {f: settings[f] for f in form.changed_data if f in settings}
            if changes:
                services.organization_update(organization=obj, actor=request.user, **changes)
            return
        name = settings.pop("name")
        currency = settings.pop("default_currency")
        created = services.organization_create(
            name=name, default_currency=currency, slug=form.cleaned_data.get("slug"), **settings
        )
        _adopt(obj, created)


# --- customers ---------------------------------------------------------------------------


ADDRESS_LABELS = {
    "line1": "Address line 1",
    "line2": "Address line 2",
    "city": "City",
    "state": "State / province",
    "postal_code": "Postal code",
    "country": "Country",
}
ADDRESS_FORM_FIELDS = tuple(f"address_{part}" for part in ADDRESS_PARTS)


class CustomerAdminForm(forms.ModelForm):
    """The customer with its billing address as separate fields; ``clean`` assembles the
    stored address (``core.addresses.address_clean``) and names the field at fault."""

    address_line1 = forms.CharField(label=ADDRESS_LABELS["line1"], max_length=200, required=False)
    address_line2 = forms.CharField(label=ADDRESS_LABELS["line2"], max_length=200, required=False)
    address_city = forms.CharField(label=ADDRESS_LABELS["city"], max_length=100, required=False)
    address_state = forms.CharField(
        label=ADDRESS_LABELS["state"],
        max_length=100,
        required=False,
        help_text="Two-letter code; required in the United States and Canada, where tax depends on it.",
    )
    address_postal_code = forms.CharField(label=ADDRESS_LABELS["postal_code"], max_length=20, required=False)
    address_country = forms.ChoiceField(
        label=ADDRESS_LABELS["country"],
        required=False,
        help_text="Decides the tax rate; required once any part of the address is given.",
    )

    class Meta:
        model = Customer
        # The address is the address_* fields; the JSON column is never edited as text.
        fields = ("organization", "email", "name", "external_id", "tax_id", "tax_id_type", "metadata")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["address_country"].choices = [("", "—"), *country_choices()]
        for part, value in (self.instance.billing_address or {}).items():
            if part in ADDRESS_PARTS:
                self.initial.setdefault(f"address_{part}", value)

    def clean(self):
        cleaned = super().clean()
        problem = customer_metadata_problem(cleaned.get("metadata"))
        if problem is not None:  # a key an app gives a meaning to (github_username)
            self.add_error("metadata", f"{problem[0]}: {problem[1]}")
        if self.instance.pk is not None and not self.address_changed:
            # Untouched: saving a name never fails on an address stored before these rules.
            cleaned["billing_address"] = self.instance.billing_address
            return cleaned
        try:
            cleaned["billing_address"] = address_clean(
                {part: cleaned.get(f"address_{part}") for part in ADDRESS_PARTS}
            )
        except AddressInvalid as exc:
            for part, message in exc.errors.items():
                self.add_error(f"address_{part}", message)
        return cleaned

    @property
    def address_changed(self) -> bool:
        return any(name in self.changed_data for name in ADDRESS_FORM_FIELDS)


@admin.register(Customer)
class CustomerAdmin(ModalActionsMixin, IdSearchMixin, admin.ModelAdmin):
    form = CustomerAdminForm
    modal_actions = [AdjustCustomerWallet]
    list_display = ("email", "name", "external_id", "organization", "created")
    list_select_related = ("organization",)
    list_filter = ("organization",)
    search_fields = ("email", "name", "external_id")
    search_help_text = "Email, name or external id; paste an id to find one customer."
    search_id_also = ("external_id",)
    show_full_result_count = False
    autocomplete_fields = ("organization",)

    def get_search_results(self, request, queryset, search_term):
        # Each word (or "quoted phrase", as Django's search splits them) through the selector
        # the indexes serve: a name by its search key, which Django's own UPPER(name) misses.
        if not search_term.strip() or parse_uuid(search_term) is not None:
            return super().get_search_results(request, queryset, search_term)
        for bit in smart_split(search_term):
            if bit.startswith(('"', "'")) and bit[0] == bit[-1]:
                bit = unescape_string_literal(bit)
            queryset = customers_matching(queryset, bit, fields=self.search_fields)
        return queryset, False

    fieldsets = (
        (None, {"fields": ("organization", "email", "name", "external_id")}),
        (
            "Billing address",
            {
                "fields": (
                    "address_line1",
                    "address_line2",
                    ("address_city", "address_state", "address_postal_code"),
                    "address_country",
                )
            },
        ),
        ("Tax", {"fields": ("tax_id", "tax_id_type")}),
        ("Payments", {"fields": ("stripe_customer_id", "default_payment_method_id")}),
        ("Wallet", {"fields": ("wallet",)}),
        ("Other", {"fields": ("metadata", "id", "created_at", "updated_at")}),
    )
    readonly_fields = (
        "stripe_customer_id",
        "default_payment_method_id",
        "wallet",
        "id",
        "created_at",
        "updated_at",
    )

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        return fieldsets if obj is not None else [f for f in fieldsets if f[0] != "Wallet"]

    @admin.display(description="balance")
    def wallet(self, customer: Customer):
        if customer.pk is None or customer._state.adding:
            return "—"
        balances = wallet_balances_of(customer)
        if not balances:
            return "Empty: no credit so far."
        rows = format_html_join(
            "",
            '<tr data-currency="{}"><td>{}</td><td class="bo-num">{}</td><td class="bo-num">{}</td>'
            '<td class="bo-num">{}</td></tr>',
            (
                (
                    b.currency,
                    b.currency.upper(),
                    format_amount(b.balance, b.currency),
                    format_amount(b.reserved, b.currency),
                    format_amount(b.available, b.currency),
                )
                for b in balances
            ),
        )
        return format_html(
            '<table class="bo-table bo-wallet"><thead><tr><th>Currency</th><th class="bo-num">Balance</th>'
            '<th class="bo-num">Reserved by pending orders</th><th class="bo-num">Available</th></tr>'
            "</thead><tbody>{}</tbody></table>",
            rows,
        )

    def get_readonly_fields(self, request, obj=None):
        fields = tuple(super().get_readonly_fields(request, obj))
        # A customer never moves to another merchant.
        return (*fields, "organization") if obj is not None else fields

    def save_model(self, request, obj, form, change):
        data = {f: form.cleaned_data[f] for f in services.CUSTOMER_FIELDS if f in form.cleaned_data}
        if change:
            changes = {f: data[f] for f in form.changed_data if f in data}
            if form.address_changed and data["billing_address"] != obj.billing_address:
                changes["billing_address"] = data["billing_address"]
            if changes:
                services.customer_update(customer=obj, actor=request.user, **changes)
            return
        email = data.pop("email")
        _adopt(
            obj,
            services.customer_create(organization=obj.organization, email=email, actor=request.user, **data),
        )

    @admin.display(description="created", ordering="created_at")
    def created(self, customer: Customer):
        return when(customer.created_at)

    def delete_model(self, request, obj):
        services.customer_delete(customer=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for customer in queryset:
            services.customer_delete(customer=customer, actor=request.user)


# --- access tokens -------------------------------------------------------------------------


class AccessTokenStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("active", "Active"), ("revoked", "Revoked"), ("expired", "Expired")]

    def queryset(self, request, queryset):
        now = clock.now()
        if self.value() == "active":
            return queryset.filter(revoked_at__isnull=True).filter(
                Q(expires_at__isnull=True) | Q(expires_at__gt=now)
            )
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        if self.value() == "expired":
            return queryset.filter(revoked_at__isnull=True, expires_at__lte=now)
        return queryset


def token_status(token: AccessToken):
    if token.revoked_at is not None:
        return badge("revoked", "bad")
    if token.expires_at is not None and token.expires_at <= clock.now():
        return badge("expired", "warn")
    return badge("active", "good")


class RevokeReasonForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "e.g. leaked in a public repository"}),
        max_length=2000,
        help_text="Recorded in the audit log with your name.",
    )


class RevokeAccessToken(ModalAction):
    name = "revoke"
    label = "Revoke"
    title = "Revoke access token"
    description = (
        "Every API request made with this token will be refused from now on. "
        "This cannot be undone: the merchant will need a new token."
    )
    permission = "accounts.revoke_accesstoken"
    form_class = RevokeReasonForm
    submit_label = "Revoke token"
    danger = True
    success_message = "Access token “{object}” revoked."

    def is_available(self, request, obj: AccessToken) -> bool:
        return obj.revoked_at is None

    def get_facts(self, request, obj: AccessToken) -> list[tuple[str, Any]]:
        return [
            ("Organization", obj.organization),
            ("Scopes", ", ".join(obj.scopes) or "—"),
            ("Last used", obj.last_used_at.strftime("%Y-%m-%d %H:%M UTC") if obj.last_used_at else "never"),
        ]

    def perform(self, request, obj: AccessToken, form: RevokeReasonForm) -> AccessToken:
        return services.access_token_revoke(token=obj, actor=request.user, reason=form.cleaned_data["reason"])


class AccessTokenCreateForm(forms.Form):
    organization = forms.ModelChoiceField(queryset=Organization.objects.all())  # autocomplete, see __init__
    name = forms.CharField(
        max_length=100, help_text="What the merchant uses it for, e.g. “production server”."
    )
    scopes = forms.MultipleChoiceField(
        choices=[(scope, scope) for scope in ALL_SCOPES],
        widget=forms.CheckboxSelectMultiple,
        help_text="Grant only what the integration needs; write includes read.",
    )
    expires_at = forms.DateTimeField(
        required=False,
        label="Expires at (UTC)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text="Leave empty for a token that does not expire.",
    )

    def __init__(self, *args, admin_site, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["organization"] = forms.ModelChoiceField(
            queryset=Organization.objects.all(),
            widget=AutocompleteSelect(
                AccessToken._meta.get_field("organization"), admin_site, attrs={"style": "width: 100%"}
            ),
        )


@admin.register(AccessToken)
class AccessTokenAdmin(ModalActionsMixin, IdSearchMixin, admin.ModelAdmin):
    modal_actions = [RevokeAccessToken]
    list_display = (
        "name",
        "prefix_display",
        "organization",
        "scopes_display",
        "last_used",
        "expires",
        "status",
    )
    list_select_related = ("organization",)
    list_filter = (AccessTokenStatusFilter, "organization")
    search_fields = ("name", "prefix", "organization__name")
    show_full_result_count = False
    fields = (
        "name",
        "organization",
        "prefix_display",
        "scopes_display",
        "status",
        "expires_at",
        "last_used_at",
        "revoked_at",
        "revocation_reason",
        "created_by",
        "created_at",
        "audit",
    )
    readonly_fields = fields

    def has_change_permission(self, request, obj=None):
        # Tokens are immutable here: the secret is never shown again, and revoking is an action.
        return False

    def has_delete_permission(self, request, obj=None):
        # A revoked token stays, so the audit log keeps pointing at something.
        return False

    @admin.display(description="prefix", ordering="prefix")
    def prefix_display(self, token: AccessToken):
        return format_html('<span class="bo-mono">{}…</span>', token.prefix)

    @admin.display(description="scopes")
    def scopes_display(self, token: AccessToken):
        if set(token.scopes) >= set(ALL_SCOPES):
            return badge("all scopes", "info")
        return format_html_join(" ", '<span class="bo-mono">{}</span>', ((s,) for s in token.scopes)) or "—"

    @admin.display(description="status")
    def status(self, token: AccessToken):
        return token_status(token)

    @admin.display(description="last used", ordering="last_used_at")
    def last_used(self, token: AccessToken):
        return when(token.last_used_at) if token.last_used_at else "never"

    @admin.display(description="expires", ordering="expires_at")
    def expires(self, token: AccessToken):
        return when(token.expires_at) if token.expires_at else "never"

    @admin.display(description="revocation reason")
    def revocation_reason(self, token: AccessToken) -> str:
        if token.revoked_at is None:
            return "—"
        entry = (
            AuditEntry.objects.filter(
                object_type=AccessToken._meta.label_lower,
                object_id=str(token.pk),
                action="access_token.revoke",
            )
            .order_by("-created_at")
            .first()
        )
        return f"{entry.reason} ({entry.actor_email or 'system'})" if entry else "—"

    @admin.display(description="audit log")
    def audit(self, token: AccessToken):
        return format_html(
            '<a href="{}">Everything done to this token</a>', _changelist_url(AuditEntry, f"q={token.pk}")
        )

    # The add page creates the token through the service and shows its secret once.

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            form = AccessTokenCreateForm(request.POST, admin_site=self.admin_site)
            if form.is_valid():
                data = form.cleaned_data
                try:
                    token, secret = services.access_token_create(
                        organization=data["organization"],
                        name=data["name"],
                        scopes=data["scopes"],
                        expires_at=data["expires_at"],
                        created_by=request.user,
                    )
                except ServiceError as exc:
                    form_add_service_error(form, exc)
                else:
                    return self._render_secret(request, token, secret)
        else:
            form = AccessTokenCreateForm(
                initial={"organization": request.GET.get("organization")}, admin_site=self.admin_site
            )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "New access token",
            "form": form,
            "media": self.media + form.media,
            "cancel_url": _changelist_url(AccessToken),
            **(extra_context or {}),
        }
        return TemplateResponse(request, "backoffice/accesstoken_add.html", context)

    def _render_secret(self, request, token: AccessToken, secret: str) -> TemplateResponse:
        messages.success(request, f"Access token “{token.name}” created for {token.organization}.")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Copy the new token",
            "token": token,
            "secret": secret,
            "token_url": reverse("admin:accounts_accesstoken_change", args=[quote(token.pk)]),
        }
        response = TemplateResponse(request, "backoffice/accesstoken_created.html", context)
        add_never_cache_headers(response)  # the secret must not be kept by any cache
        return response
