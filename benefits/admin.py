"""Backoffice pages for benefits and grants.

Benefits: a list (type, products, holders), an add page that first asks for the type, then
a form whose settings fields are drawn from the type's properties serializer (the same one
the API validates with, so its errors show on the fields they name), and a Delete action
that revokes every grant. Grants: a list with errors (filters: status, failed, type,
organization) with a retry action, and per grant Retry, Revoke and Grant. Every change goes
through ``benefits.services``, which audits it.

The customer and product pages get their benefit panels and the product its "Set benefits"
action from here (``benefits.backoffice``), through the registries those pages offer.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import quote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Prefetch
from django.forms.models import construct_instance
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from rest_framework import serializers

from accounts.backoffice import CustomerEmailSearchMixin
from benefits import services
from benefits.backoffice import (
    CHANGE_GRANTS,
    GRANT_ACTIONS,
    SetProductBenefits,
    benefit_link,
    grant_error,
    grant_scope_link,
    grant_status_badge,
    holders_subquery,
    type_configured,
    type_label,
)
from benefits.models import Benefit, BenefitGrant, ProductBenefit
from benefits.strategies import REGISTRY, benefit_types, strategy_for
from billing.catalog.admin import ProductAdmin
from billing.orders.admin import when_field
from core.admin import ReadOnlyAdmin
from core.backoffice.actions import ModalAction, ModalActionsMixin
from core.backoffice.display import badge, pretty_json, when
from core.backoffice.search import IdSearchMixin
from core.errors import Conflict, ServiceError
from core.models import AuditEntry

# The product page's "Set benefits" action (the catalog does not import benefits).
ProductAdmin.modal_actions = [*ProductAdmin.modal_actions, SetProductBenefits]

PROPERTY_PREFIX = "prop_"


# --- the settings form, drawn from the type's properties serializer ------------------------


def _form_field(field: serializers.Field) -> forms.Field:
    """A form field for one serializer field; what has no simple widget is edited as JSON."""
    options = {
        "required": field.required and field.default is serializers.empty,
        "help_text": field.help_text or "",
        "label": (field.label or field.field_name.replace("_", " ")).capitalize(),
    }
    if isinstance(field, serializers.BooleanField):
        return forms.BooleanField(**{**options, "required": False})
    if isinstance(field, serializers.IntegerField):
        return forms.IntegerField(min_value=field.min_value, max_value=field.max_value, **options)
    if isinstance(field, serializers.ChoiceField):
        return forms.ChoiceField(choices=[("", "—"), *field.choices.items()], **options)
    if isinstance(field, serializers.CharField):
        long = (field.max_length or 0) > 500
        widget = forms.Textarea(attrs={"rows": 3}) if long else None
        return forms.CharField(max_length=field.max_length, widget=widget, strip=False, **options)
    if field.default is not serializers.empty:  # a JSON box shows the default, not "null"
        options["initial"] = field.default() if callable(field.default) else field.default
    return forms.JSONField(widget=forms.Textarea(attrs={"rows": 3}), **options)


def properties_fields(type_name: str) -> dict[str, forms.Field]:
    if type_name not in REGISTRY.strategies:
        return {}
    serializer = strategy_for(type_name).properties_serializer()
    return {
        f"{PROPERTY_PREFIX}{name}": _form_field(field)
        for name, field in serializer.fields.items()
        if not field.read_only
    }


class BenefitForm(forms.ModelForm):
    """A benefit of one type (``benefit_type``, set by ``benefit_form_for``). Saving is the
    service call made at the end of validation, so its refusals are form errors."""

    benefit_type = ""
    actor = None

    class Meta:
        model = Benefit
        fields = ("organization", "description", "metadata")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance._state.adding:
            self.instance.type = self.benefit_type  # the add page's read-only type shows it
        else:
            for name, value in (self.instance.properties or {}).items():
                self.initial.setdefault(f"{PROPERTY_PREFIX}{name}", value)
        if "metadata" in self.fields:
            self.fields["metadata"].required = False
            self.fields["metadata"].label = "Your metadata"
            self.fields["metadata"].widget.attrs["rows"] = 3
            self.fields[
                "metadata"
            ].help_text = 'A JSON object of your own keys, e.g. {"tier": "pro"}; never shown to customers.'

    def properties(self) -> dict:
        data = {}
        for key, value in self.cleaned_data.items():
            if key.startswith(PROPERTY_PREFIX) and value not in (None, ""):
                data[key.removeprefix(PROPERTY_PREFIX)] = value
        return data

    def clean(self):
        cleaned = super().clean()
        configured, why = type_configured(self.benefit_type)
        if not configured and self.instance._state.adding:
            raise ValidationError(
                f"{type_label(self.benefit_type)} is not configured: {why}", code="not_configured"
            )
        organization = cleaned.get("organization") or getattr(self.instance, "organization", None)
        checked = strategy_for(self.benefit_type).properties_serializer(
            data=self.properties(), context={"organization": organization}
        )
        if not checked.is_valid():
            for name, errors in checked.errors.items():
                field = f"{PROPERTY_PREFIX}{name}"
                messages_ = [str(e) for e in errors] if isinstance(errors, list) else [str(errors)]
                if field in self.fields:
                    self.add_error(field, messages_)
                else:
                    self.add_error(None, [f"{name}: {m}" for m in messages_])
        return cleaned

    def _post_clean(self):
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
            field = exc.field or ""
            if field.startswith("properties."):
                field = f"{PROPERTY_PREFIX}{field.removeprefix('properties.')}"
            self.add_error(
                field if field in self.fields else None, ValidationError(exc.detail, code=exc.code)
            )

    def call_service(self) -> Benefit:
        data = self.cleaned_data
        if self.instance._state.adding:
            return services.benefit_create(
                organization=data["organization"],
                type=self.benefit_type,
                description=data["description"],
                properties=self.properties(),
                metadata=data.get("metadata") or {},
                actor=self.actor,
            )
        return services.benefit_update(
            benefit=self.instance,
            description=data["description"],
            properties=self.properties(),
            metadata=data.get("metadata") or {},
            actor=self.actor,
        )


def benefit_form_for(type_name: str) -> type[BenefitForm]:
    return type(
        f"{type_name.title().replace('_', '')}BenefitForm",
        (BenefitForm,),
        {"benefit_type": type_name, **properties_fields(type_name)},
    )


# --- benefits ------------------------------------------------------------------------------


class DeleteBenefit(ModalAction):
    name = "delete_benefit"
    label = "Delete"
    title = "Delete the benefit"
    description = (
        "Products stop unlocking it and every grant of it is revoked (license keys disabled, "
        "invitations removed...), in batches. The grants and their history stay. This cannot be undone."
    )
    permission = "benefits.delete_benefit"
    form_class = forms.Form
    submit_label = "Delete benefit"
    danger = True
    success_message = "Benefit “{object}” deleted; its grants are being revoked."

    def is_available(self, request, obj: Benefit) -> bool:
        return obj.deleted_at is None

    def get_facts(self, request, obj: Benefit):
        products = [link.product.name for link in obj.product_benefits.select_related("product")]
        return [
            ("Type", type_label(obj.type)),
            ("Products", ", ".join(products) or "none"),
            ("Holders now", BenefitGrant.objects.filter(benefit=obj, status="granted").count()),
        ]

    def perform(self, request, obj: Benefit, form):
        return services.benefit_delete(benefit=obj, actor=request.user)


class BenefitTypeFilter(admin.SimpleListFilter):
    title = "type"
    parameter_name = "type"
    field = "type"

    def lookups(self, request, model_admin):
        return [(name, type_label(name)) for name in benefit_types()]

    def queryset(self, request, queryset):
        return queryset.filter(**{self.field: self.value()}) if self.value() else queryset


class BenefitStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("live", "Live"), ("deleted", "Deleted")]

    def queryset(self, request, queryset):
        if self.value() == "live":
            return queryset.filter(deleted_at__isnull=True)
        if self.value() == "deleted":
            return queryset.filter(deleted_at__isnull=False)
        return queryset


@admin.register(Benefit)
class BenefitAdmin(ModalActionsMixin, IdSearchMixin, admin.ModelAdmin):
    modal_actions = [DeleteBenefit]
    list_display = ("description", "type_display", "organization", "products", "holders", "state", "created")
    list_select_related = ("organization",)
    list_filter = (BenefitTypeFilter, BenefitStateFilter, "organization")
    search_fields = ("description",)
    search_help_text = "Words of the description, or paste an id."
    show_full_result_count = False
    list_per_page = 50
    autocomplete_fields = ("organization",)
    readonly_fields = (
        "type_display",
        "organization_link",
        "state",
        "products",
        "holders_link",
        "properties_pretty",
        "id",
        "created",
        "updated",
        "deleted",
    )

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(holders_count=holders_subquery())
            .prefetch_related(
                Prefetch(
                    "product_benefits",
                    ProductBenefit.objects.filter(removed_at__isnull=True).select_related("product"),
                    to_attr="live_links",
                )
            )
        )

    def _type_of(self, request, obj) -> str:
        return obj.type if obj is not None else request.GET.get("type", "")

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = benefit_form_for(self._type_of(request, obj))
        form = super().get_form(request, obj, change=change, **kwargs)
        form.actor = request.user
        return form

    def _editable(self, request, obj) -> bool:
        return obj is None or self.has_change_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        # A deleted benefit is history: shown, never changed.
        return super().has_change_permission(request, obj) and (obj is None or obj.deleted_at is None)

    def get_fieldsets(self, request, obj=None):
        type_name = self._type_of(request, obj)
        if self._editable(request, obj):
            settings = tuple(properties_fields(type_name))
        else:
            settings = ("properties_pretty",)
        head = (
            ("organization", "type_display", "description")
            if obj is None
            else ("organization_link", "type_display", "state", "description")
        )
        fieldsets = [(None, {"fields": head})]
        if settings:
            fieldsets.append(
                (
                    "Settings",
                    {"fields": settings, "description": strategy_for(type_name).description},
                )
            )
        fieldsets.append(("Metadata", {"fields": ("metadata",)}))
        if obj is not None:
            fieldsets.append(("Products and holders", {"fields": ("products", "holders_link")}))
            fieldsets.append(("Record", {"fields": ("id", "created", "updated", "deleted")}))
        return fieldsets

    def has_delete_permission(self, request, obj=None):
        return False  # the Delete action goes through the service, which revokes the grants

    def add_view(self, request, form_url="", extra_context=None):
        type_name = request.GET.get("type", "")
        if type_name not in REGISTRY.strategies:
            return self._type_choice(request, unknown=type_name)
        configured, why = type_configured(type_name)
        if not configured and request.method == "GET":
            messages.warning(request, f"{type_label(type_name)} is not configured: {why}")
        return super().add_view(
            request, form_url, {**(extra_context or {}), "title": f"Add a {type_label(type_name)} benefit"}
        )

    def _type_choice(self, request, unknown: str = "") -> TemplateResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        add_url = reverse("admin:benefits_benefit_add")
        types = []
        for name in benefit_types():
            strategy = strategy_for(name)
            configured, why = strategy.is_configured()
            types.append(
                {
                    "type": name,
                    "label": strategy.label,
                    "description": strategy.description,
                    "configured": configured,
                    "why": why,
                    "url": f"{add_url}?type={name}",
                }
            )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Add a benefit: choose its type",
            "types": types,
            "unknown": unknown,
        }
        return TemplateResponse(request, "backoffice/benefits/type_choice.html", context)

    def save_model(self, request, obj, form, change):
        saved = form.result
        if saved is not None:
            for field in saved._meta.concrete_fields:
                setattr(obj, field.attname, getattr(saved, field.attname))
            obj._state.adding = False
            obj._state.db = saved._state.db

    def save_related(self, request, form, formsets, change):
        pass  # the service wrote everything

    @admin.display(description="type", ordering="type")
    def type_display(self, benefit: Benefit | None = None):
        type_name = benefit.type if benefit is not None and benefit.type else ""
        if not type_name:
            return "—"
        configured, _ = type_configured(type_name)
        label = type_label(type_name)
        return format_html("{} {}", label, badge("not configured", "warn")) if not configured else label

    @admin.display(description="organization")
    def organization_link(self, benefit: Benefit):
        url = reverse("admin:accounts_organization_change", args=[quote(benefit.organization_id)])
        return format_html('<a href="{}">{}</a>', url, benefit.organization)

    @admin.display(description="state", ordering="deleted_at")
    def state(self, benefit: Benefit):
        return badge("deleted", "muted") if benefit.deleted_at else badge("live", "good")

    @admin.display(description="products")
    def products(self, benefit: Benefit):
        links = getattr(benefit, "live_links", None)
        if links is None:
            links = list(benefit.product_benefits.filter(removed_at__isnull=True).select_related("product"))
        if not links:
            return "—"
        return format_html_join(
            ", ",
            '<a href="{}">{}</a>',
            (
                (reverse("admin:catalog_product_change", args=[quote(x.product_id)]), x.product.name)
                for x in links
            ),
        )

    @admin.display(description="settings")
    def properties_pretty(self, benefit: Benefit):
        return pretty_json(benefit.properties)

    @admin.display(description="holders", ordering="holders_count")
    def holders(self, benefit: Benefit) -> int:
        return getattr(benefit, "holders_count", 0)

    @admin.display(description="holders")
    def holders_link(self, benefit: Benefit):
        url = reverse("admin:benefits_benefitgrant_changelist") + f"?benefit__id__exact={benefit.pk}"
        return format_html('<a href="{}">{} granted now: see every grant</a>', url, self.holders(benefit))

    @admin.display(description="created", ordering="created_at")
    def created(self, benefit: Benefit):
        return when(benefit.created_at)

    updated = when_field("updated_at", "updated")
    deleted = when_field("deleted_at", "deleted")


# --- grants --------------------------------------------------------------------------------


class ErroredFilter(admin.SimpleListFilter):
    title = "failure"
    parameter_name = "errored"

    def lookups(self, request, model_admin):
        return [
            ("yes", "Failed (shows the error)"),
            ("gave_up", "Gave up: needs a retry"),
            ("no", "No failure"),
        ]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(errored_at__isnull=False)
        if self.value() == "gave_up":
            return queryset.filter(errored_at__isnull=False, next_attempt_at__isnull=True)
        if self.value() == "no":
            return queryset.filter(errored_at__isnull=True)
        return queryset


class GrantTypeFilter(BenefitTypeFilter):
    field = "benefit__type"


@admin.register(BenefitGrant)
class BenefitGrantAdmin(ModalActionsMixin, CustomerEmailSearchMixin, ReadOnlyAdmin):
    change_form_template = "backoffice/billing_change_form.html"
    modal_actions = GRANT_ACTIONS
    actions = ["retry_selected"]
    list_display = (
        "created",
        "benefit_display",
        "type_display",
        "customer_email",
        "status_display",
        "scope",
        "granted",
        "revoked",
        "error_display",
        "organization",
    )
    list_display_links = ("created",)
    list_filter = ("status", ErroredFilter, GrantTypeFilter, "organization")
    list_select_related = ("benefit", "customer", "organization", "order")
    search_fields = ("customer__email",)
    search_help_text = "A grant id (exact), or the customer's e-mail."
    show_full_result_count = False
    list_per_page = 50
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "status_display",
                    "benefit_display",
                    "type_display",
                    "customer_link",
                    "scope",
                    "organization",
                )
            },
        ),
        ("What was granted", {"fields": ("properties_pretty",)}),
        (
            "Work",
            {
                "fields": (
                    "wanted",
                    "revoke_reason",
                    "revoked_by_operator",
                    "error_display",
                    "attempts",
                    "next_attempt",
                    "audit",
                )
            },
        ),
        ("Record", {"fields": ("id", "created", "granted", "revoked", "updated")}),
    )
    readonly_fields = (
        "status_display",
        "benefit_display",
        "type_display",
        "customer_link",
        "scope",
        "properties_pretty",
        "error_display",
        "next_attempt",
        "audit",
        "created",
        "granted",
        "revoked",
        "updated",
    )

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("benefit", "customer", "organization", "order")

    def has_retry_permission(self, request) -> bool:
        return request.user.has_perm(CHANGE_GRANTS)

    @admin.action(description="Retry the selected failed grants", permissions=["retry"])
    def retry_selected(self, request, queryset):
        retried = skipped = 0
        for grant in queryset.filter(errored_at__isnull=False):
            try:
                services.benefit_grant_retry(grant=grant, actor=request.user)
                retried += 1
            except Conflict:
                skipped += 1
        skipped += queryset.filter(errored_at__isnull=True).count()
        self.message_user(
            request, f"Retrying {retried} grant(s); {skipped} had no failure to retry.", messages.SUCCESS
        )

    @admin.display(description="benefit", ordering="benefit__description")
    def benefit_display(self, grant: BenefitGrant):
        return benefit_link(grant.benefit)

    @admin.display(description="type", ordering="benefit__type")
    def type_display(self, grant: BenefitGrant) -> str:
        return type_label(grant.benefit.type)

    @admin.display(description="customer", ordering="customer__email")
    def customer_email(self, grant: BenefitGrant) -> str:
        return grant.customer.email

    @admin.display(description="customer")
    def customer_link(self, grant: BenefitGrant):
        url = reverse("admin:accounts_customer_change", args=[quote(grant.customer_id)])
        return format_html('<a href="{}">{}</a>', url, grant.customer.email)

    @admin.display(description="status", ordering="status")
    def status_display(self, grant: BenefitGrant):
        return grant_status_badge(grant)

    @admin.display(description="comes with")
    def scope(self, grant: BenefitGrant):
        return grant_scope_link(grant)

    @admin.display(description="error", ordering="errored_at")
    def error_display(self, grant: BenefitGrant):
        return grant_error(grant)

    @admin.display(description="properties")
    def properties_pretty(self, grant: BenefitGrant):
        return pretty_json(grant.properties)

    @admin.display(description="audit log")
    def audit(self, grant: BenefitGrant):
        url = reverse("admin:core_auditentry_changelist") + f"?q={grant.pk}"
        count = AuditEntry.objects.filter(
            object_type="benefits.benefitgrant", object_id=str(grant.pk)
        ).count()
        return format_html('<a href="{}">{} operator action(s) on this grant</a>', url, count)

    created = when_field("created_at", "created")
    granted = when_field("granted_at", "granted")
    revoked = when_field("revoked_at", "revoked")
    updated = when_field("updated_at", "updated")
    next_attempt = when_field("next_attempt_at", "next attempt")
