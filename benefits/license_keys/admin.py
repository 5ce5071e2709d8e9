"""Backoffice: license keys. The list finds a key by its first characters (or all of it), a
customer's e-mail or name, or an id; a key's page shows its limits, its activations and the
actions (disable, enable, revoke, free an activation), each through a service, audited.
The page shows the key masked: the customer holds it, operators need not read it."""

import re

from django import forms
from django.contrib import admin
from django.db.models import Q
from django.utils.html import format_html, format_html_join

from accounts.backoffice import EMAIL_RE, CustomerEmailSearchMixin
from benefits.license_keys import keys, services
from benefits.license_keys.models import LicenseKey, LicenseKeyActivation
from billing.orders.admin import link_to, when_field
from core.admin import ReadOnlyAdmin
from core.backoffice.actions import ModalAction, ModalActionsMixin
from core.backoffice.display import badge, when
from core.backoffice.search import parse_uuid

CHANGE = "license_keys.change_licensekey"
STATUS_TONES = {
    LicenseKey.Status.GRANTED: "good",
    LicenseKey.Status.DISABLED: "warn",
    LicenseKey.Status.REVOKED: "bad",
}
# A search term that may be the start of a key: letters, digits and dashes.
KEY_START_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{2,99}$")


class ReasonForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), max_length=200, required=False, help_text="Audited."
    )


class DisableKey(ModalAction):
    name = "disable"
    label = "Disable"
    title = "Disable the license key"
    description = "Validations and activations are refused until it is enabled again."
    permission = CHANGE
    form_class = ReasonForm
    submit_label = "Disable"
    danger = True
    success_message = "License key disabled."

    def is_available(self, request, obj: LicenseKey) -> bool:
        return obj.status == LicenseKey.Status.GRANTED

    def perform(self, request, obj: LicenseKey, form):
        return services.license_key_update(
            license_key=obj, status=LicenseKey.Status.DISABLED, actor=request.user
        )


class EnableKey(ModalAction):
    name = "enable"
    label = "Enable"
    title = "Enable the license key"
    description = "The key validates again (within its expiry and limits)."
    permission = CHANGE
    submit_label = "Enable"
    success_message = "License key enabled."

    def is_available(self, request, obj: LicenseKey) -> bool:
        return obj.status == LicenseKey.Status.DISABLED

    def perform(self, request, obj: LicenseKey, form):
        return services.license_key_update(
            license_key=obj, status=LicenseKey.Status.GRANTED, actor=request.user
        )


class RevokeKey(ModalAction):
    name = "revoke"
    label = "Revoke"
    title = "Revoke the license key"
    description = (
        "Final: the key is refused from now on. Its grant stays; granting the benefit again after "
        "revoking the grant makes the key live again."
    )
    permission = CHANGE
    form_class = ReasonForm
    submit_label = "Revoke"
    danger = True
    success_message = "License key revoked."

    def is_available(self, request, obj: LicenseKey) -> bool:
        return obj.status != LicenseKey.Status.REVOKED

    def perform(self, request, obj: LicenseKey, form):
        return services.license_key_revoke(
            license_key=obj, reason=form.cleaned_data["reason"], actor=request.user
        )


class DeactivateForm(forms.Form):
    activation = forms.ModelChoiceField(queryset=LicenseKeyActivation.objects.none(), empty_label=None)

    def __init__(self, *args, license_key: LicenseKey, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["activation"]
        field.queryset = LicenseKeyActivation.objects.filter(
            license_key=license_key, deactivated_at__isnull=True
        )
        field.label_from_instance = lambda a: f"{a.label} (since {a.created_at:%Y-%m-%d})"


class DeactivateActivation(ModalAction):
    name = "deactivate"
    label = "Free an activation"
    title = "Deactivate an installation"
    description = "Frees one of the key's activation seats; the installation's next validation of it fails."
    permission = CHANGE
    form_class = DeactivateForm
    submit_label = "Deactivate"
    success_message = "Activation deactivated."

    def is_available(self, request, obj: LicenseKey) -> bool:
        return obj.activations_count > 0

    def get_form_kwargs(self, request, obj: LicenseKey):
        return {"license_key": obj}

    def perform(self, request, obj: LicenseKey, form):
        return services.license_key_activation_deactivate(
            activation=form.cleaned_data["activation"], actor=request.user
        )


@admin.register(LicenseKey)
class LicenseKeyAdmin(ModalActionsMixin, CustomerEmailSearchMixin, ReadOnlyAdmin):
    modal_actions = [DisableKey, EnableKey, RevokeKey, DeactivateActivation]
    change_form_template = "backoffice/billing_change_form.html"
    list_display = (
        "display_key_column",
        "status_badge",
        "customer_email",
        "benefit",
        "usage_display",
        "activations_display",
        "expires",
        "last_validated",
        "organization",
        "created",
    )
    list_display_links = ("display_key_column",)
    list_filter = ("status", ("expires_at", admin.EmptyFieldListFilter), "organization")
    list_select_related = ("customer", "benefit", "organization")
    search_fields = ("=key",)  # shows the search box; see get_search_results
    search_help_text = "The start of a key (or all of it), a customer's e-mail or name, or an id."
    show_full_result_count = False
    list_per_page = 50
    fieldsets = (
        (
            None,
            {"fields": ("display_key_column", "status_badge", "organization", "customer_link", "benefit")},
        ),
        (
            "Limits",
            {"fields": ("usage_display", "activations_display", "expires", "validations", "last_validated")},
        ),
        ("Activations", {"fields": ("activations_table",)}),
        ("Record", {"fields": ("id", "grant_link", "created", "updated")}),
    )

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if term and not EMAIL_RE.match(term) and parse_uuid(term) is None and KEY_START_RE.match(term):
            # The prefix index serves LIKE 'TERM%'; a name may match too (customers first).
            return queryset.filter(Q(key__startswith=keys.key_normalize(term)) | self.text_match(term)), False
        return super().get_search_results(request, queryset, search_term)

    @admin.display(description="key", ordering="key")
    def display_key_column(self, key: LicenseKey):
        return format_html('<span class="bo-mono">{}</span>', key.display_key)

    @admin.display(description="status", ordering="status")
    def status_badge(self, key: LicenseKey):
        return badge(key.status, STATUS_TONES.get(key.status, "muted"))

    @admin.display(description="customer", ordering="customer__email")
    def customer_email(self, key: LicenseKey) -> str:
        return key.customer.email

    @admin.display(description="customer")
    def customer_link(self, key: LicenseKey):
        return link_to("accounts", "customer", key.customer_id, key.customer.email)

    @admin.display(description="grant")
    def grant_link(self, key: LicenseKey):
        return link_to("benefits", "benefitgrant", key.grant_id, key.grant_id)

    @admin.display(description="usage", ordering="usage")
    def usage_display(self, key: LicenseKey) -> str:
        return (
            f"{key.usage} / {key.limit_usage}" if key.limit_usage is not None else f"{key.usage} (no limit)"
        )

    @admin.display(description="activations", ordering="activations_count")
    def activations_display(self, key: LicenseKey) -> str:
        if key.limit_activations is None:
            return "none (validation only)"
        return f"{key.activations_count} / {key.limit_activations}"

    @admin.display(description="expires", ordering="expires_at")
    def expires(self, key: LicenseKey):
        return when(key.expires_at) if key.expires_at else "never"

    last_validated = when_field("last_validated_at", "last validated")
    created = when_field("created_at", "created")
    updated = when_field("updated_at", "updated")

    @admin.display(description="activations")
    def activations_table(self, key: LicenseKey):
        rows = list(key.activations.order_by("-created_at")[:100])
        if not rows:
            return "—"
        body = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class='bo-mono'>{}</td></tr>",
            (
                (
                    a.label,
                    when(a.created_at),
                    badge("live", "good")
                    if a.is_live
                    else format_html("deactivated {}", when(a.deactivated_at)),
                    a.pk,
                )
                for a in rows
            ),
        )
        return format_html(
            "<table><thead><tr><th>label</th><th>activated</th><th>state</th><th>id</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            body,
        )
