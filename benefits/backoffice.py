"""The benefit pieces of other apps' backoffice pages, added through their registries (the
customer and product pages never import benefits): the customer's grants with their grant,
revoke and retry actions, the product's benefits with a "Set benefits" action.

Also the grant actions themselves (``benefits.admin`` lists them on the grant page) and the
display helpers the benefit and grant pages share.
"""

from django import forms
from django.contrib.admin.utils import quote
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.text import Truncator

from benefits import services
from benefits.models import Benefit, BenefitGrant, ProductBenefit
from benefits.strategies import REGISTRY, strategy_for
from billing.catalog.models import Product
from core.backoffice.actions import ModalAction
from core.backoffice.display import badge, when
from core.backoffice.sections import page_sections
from core.backoffice.timeline import admin_change_url, order_label

G = BenefitGrant.Status
W = BenefitGrant.Wanted
CUSTOMER_GRANTS_SHOWN = 50
GRANT_TONES = {G.PENDING: "warn", G.GRANTED: "good", G.REVOKED: "muted"}
VIEW_GRANTS = "benefits.view_benefitgrant"
CHANGE_GRANTS = "benefits.change_benefitgrant"
CHANGE_BENEFITS = "benefits.change_benefit"


# --- display pieces ------------------------------------------------------------------------


def type_label(type_name: str) -> str:
    strategy = REGISTRY.strategies.get(type_name)
    return strategy.label if strategy is not None else type_name


def grant_status_badge(grant: BenefitGrant) -> SafeString:
    """What is done, and what is on its way when that differs (a grant being revoked)."""
    shown = badge(grant.status, GRANT_TONES.get(grant.status, "muted"))
    if grant.error:
        shown = format_html("{} {}", shown, badge("failed", "bad"))
    if grant.next_attempt_at is not None and grant.wanted != grant.status:
        shown = format_html("{} {}", shown, badge(f"to be {grant.wanted}", "info"))
    return shown


def grant_scope_link(grant: BenefitGrant) -> SafeString | str:
    """The subscription or one-time order the grant comes with."""
    if grant.subscription_id is not None:
        url = admin_change_url("subscriptions", "subscription", grant.subscription_id)
        label = f"subscription {str(grant.subscription_id)[:8]}"
    elif grant.order_id is not None:
        url = admin_change_url("orders", "order", grant.order_id)
        label = f"order {order_label(grant.order)}"  # callers select_related("order")
    else:
        return "—"
    return format_html('<a href="{}">{}</a>', url, label) if url else label


def grant_error(grant: BenefitGrant) -> SafeString | str:
    if not grant.error:
        return "—"
    text = Truncator(grant.error).chars(160)
    retry = "given up: retry by hand" if grant.next_attempt_at is None else f"attempt {grant.attempts}"
    return format_html(
        '<span class="bo-tone-bad" title="{}">{}</span> <span class="bo-quiet">({}, {})</span>',
        grant.error,
        text,
        retry,
        when(grant.errored_at),
    )


def holders_subquery():
    """Grants of the benefit now granted, counted for each row shown (the (benefit, status)
    index), not grouped over the whole grants table."""
    counted = (
        BenefitGrant.objects.filter(benefit=OuterRef("pk"), status=G.GRANTED)
        .order_by()
        .values("benefit")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counted), 0)


def benefit_link(benefit: Benefit) -> SafeString | str:
    url = admin_change_url("benefits", "benefit", benefit.pk)
    text = benefit.description + (" (deleted)" if benefit.deleted_at else "")
    return format_html('<a href="{}">{}</a>', url, text) if url else text


# --- grant actions -------------------------------------------------------------------------


class BackForm(forms.Form):
    """Where to go once done: the grant's page, or the customer's page it was opened from."""

    back = forms.ChoiceField(
        choices=[("", "grant"), ("customer", "customer")], required=False, widget=forms.HiddenInput
    )


class GrantReasonForm(BackForm):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=2000,
        help_text="Recorded in the audit log with your name.",
    )


class OptionalReasonForm(GrantReasonForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["reason"].required = False


class GrantAction(ModalAction):
    permission = CHANGE_GRANTS

    @staticmethod
    def available(grant: BenefitGrant) -> bool:
        """Whether the button makes sense for the grant (the service still decides)."""
        return True

    def is_available(self, request, obj: BenefitGrant) -> bool:
        return self.available(obj)

    def get_initial(self, request, obj: BenefitGrant):
        return {"back": "customer" if request.GET.get("back") == "customer" else ""}

    def get_facts(self, request, obj: BenefitGrant):
        return [
            ("Benefit", f"{obj.benefit.description} ({type_label(obj.benefit.type)})"),
            ("Customer", obj.customer.email),
            ("Status", grant_status_badge(obj)),
            ("Comes with", grant_scope_link(obj)),
        ]

    def get_success_url(self, request, obj: BenefitGrant, result):
        if request.POST.get("back") == "customer":
            return reverse("admin:accounts_customer_change", args=[quote(obj.customer_id)])
        return super().get_success_url(request, obj, result)


class RevokeGrant(GrantAction):
    name = "revoke"
    label = "Revoke"
    title = "Revoke the grant"
    description = (
        "Takes the benefit back from the customer now (a license key disabled, a repository "
        "invitation removed...). Billing events will not grant it again until an operator grants it."
    )
    form_class = GrantReasonForm
    submit_label = "Revoke"
    danger = True
    success_message = "Grant revoked: {object}."

    @staticmethod
    def available(grant: BenefitGrant) -> bool:
        return not (grant.wanted == W.REVOKED and grant.revoked_by_operator)

    def perform(self, request, obj, form):
        return services.benefit_grant_revoke(
            grant=obj, reason=form.cleaned_data["reason"], actor=request.user
        )


class GrantGrant(GrantAction):
    name = "grant"
    label = "Grant"
    title = "Grant the benefit again"
    description = "Gives a revoked grant back to the customer and lifts a revocation made by hand."
    form_class = OptionalReasonForm
    submit_label = "Grant"
    success_message = "Granted again: {object}."

    @staticmethod
    def available(grant: BenefitGrant) -> bool:
        return grant.wanted == W.REVOKED and grant.benefit.deleted_at is None

    def perform(self, request, obj, form):
        return services.benefit_grant_grant(grant=obj, reason=form.cleaned_data["reason"], actor=request.user)


class RetryGrant(GrantAction):
    name = "retry"
    label = "Retry"
    title = "Retry the failed grant"
    description = "Tries the grant's pending work again now, with a fresh run of attempts."
    form_class = BackForm
    submit_label = "Retry now"
    success_message = "Retrying: {object}."

    @staticmethod
    def available(grant: BenefitGrant) -> bool:
        return bool(grant.error)

    def perform(self, request, obj, form):
        return services.benefit_grant_retry(grant=obj, actor=request.user)


GRANT_ACTIONS = [RetryGrant, RevokeGrant, GrantGrant]


def _action_url(name: str, grant: BenefitGrant) -> str | None:
    try:
        return reverse(f"admin:benefits_benefitgrant_{name}", args=[quote(grant.pk)])
    except NoReverseMatch:
        return None


def _grant_buttons(request, grant: BenefitGrant) -> SafeString:
    if not request.user.has_perm(CHANGE_GRANTS):
        return format_html("")
    buttons = []
    for action_class in GRANT_ACTIONS:
        url = _action_url(action_class.name, grant)
        if url is None or not action_class.available(grant):
            continue
        url = f"{url}?back=customer"
        danger = " bo-button--danger" if action_class.danger else ""
        buttons.append(
            format_html(
                '<a href="{}" hx-get="{}" hx-target="#modal" hx-swap="innerHTML" '
                'class="bo-button bo-grant-{}{}">{}</a>',
                url,
                url,
                action_class.name,
                danger,
                action_class.label,
            )
        )
    return format_html_join(" ", "{}", ((b,) for b in buttons))


# --- the customer page: grants ---------------------------------------------------------------


@page_sections.section(
    "accounts.customer", key="benefit_grants", title="Benefits", permission=VIEW_GRANTS, order=20
)
def customer_grants(request, customer) -> SafeString:
    grants = list(
        BenefitGrant.objects.filter(customer=customer)
        .select_related("benefit", "order")
        .order_by("-created_at")[: CUSTOMER_GRANTS_SHOWN + 1]
    )
    if not grants:
        return format_html('<p class="bo-quiet">{}</p>', "No benefit granted yet.")
    more = ""
    if len(grants) > CUSTOMER_GRANTS_SHOWN:
        grants = grants[:CUSTOMER_GRANTS_SHOWN]
        url = reverse("admin:benefits_benefitgrant_changelist") + f"?customer__id__exact={customer.pk}"
        more = format_html('<p class="bo-panel-links"><a href="{}">All grants of this customer</a></p>', url)
    rows = format_html_join(
        "",
        '<tr data-grant="{}"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>'
        "<td>{}</td></tr>",
        (
            (
                grant.pk,
                format_html(
                    '<a href="{}">{}</a>',
                    admin_change_url("benefits", "benefitgrant", grant.pk),
                    grant.benefit.description,
                ),
                type_label(grant.benefit.type),
                grant_status_badge(grant),
                grant_scope_link(grant),
                when(grant.granted_at),
                format_html(
                    "{}{}",
                    when(grant.revoked_at) if grant.status == G.REVOKED else "—",
                    format_html('<div class="bo-quiet">{}</div>', grant.revoke_reason)
                    if grant.revoke_reason and grant.wanted == W.REVOKED
                    else "",
                ),
                grant_error(grant),
                _grant_buttons(request, grant),
            )
            for grant in grants
        ),
    )
    return format_html(
        '<table class="bo-table bo-grants"><thead><tr><th>Benefit</th><th>Type</th><th>Status</th>'
        "<th>Comes with</th><th>Granted</th><th>Revoked</th><th>Error</th><th></th></tr></thead>"
        "<tbody>{}</tbody></table>{}",
        rows,
        more,
    )


# --- the product page: its benefits -----------------------------------------------------------


def product_links(product: Product):
    return (
        ProductBenefit.objects.filter(product=product, benefit__deleted_at__isnull=True)
        .select_related("benefit")
        .order_by("position", "created_at")
    )


def _sync_state(link: ProductBenefit) -> SafeString:
    if link.removed_at is not None:
        return badge("being removed from holders", "warn")
    if link.synced_at is None:
        return badge("being granted to holders", "info")
    return badge("every holder has it", "good")


@page_sections.section(
    "catalog.product", key="benefits", title="Benefits", permission="benefits.view_benefit", order=10
)
def product_benefits(request, product) -> SafeString:
    links = list(product_links(product))
    if not links:
        body = format_html('<p class="bo-quiet">{}</p>', "This product unlocks no benefit.")
    else:
        rows = format_html_join(
            "",
            '<tr data-benefit="{}"><td class="bo-num">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>',
            (
                (
                    link.benefit_id,
                    position,
                    benefit_link(link.benefit),
                    type_label(link.benefit.type),
                    _sync_state(link),
                )
                for position, link in enumerate((x for x in links if x.removed_at is None), start=1)
            ),
        )
        leaving = [x for x in links if x.removed_at is not None]
        gone = format_html_join(
            "",
            "<tr><td></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((benefit_link(x.benefit), type_label(x.benefit.type), _sync_state(x)) for x in leaving),
        )
        body = format_html(
            '<table class="bo-table bo-product-benefits"><thead><tr><th class="bo-num">#</th>'
            "<th>Benefit</th><th>Type</th><th>Holders</th></tr></thead><tbody>{}{}</tbody></table>",
            rows,
            gone,
        )
    return body


class ProductBenefitsForm(forms.Form):
    """One select per place: the benefits in the order customers see them; blanks are skipped."""

    def __init__(self, *args, product: Product, **kwargs):
        super().__init__(*args, **kwargs)
        self.product = product
        live = Benefit.objects.filter(organization_id=product.organization_id, deleted_at__isnull=True)
        self.benefits = {str(b.pk): b for b in live.order_by("description")}
        current = [str(link.benefit_id) for link in product_links(product) if link.removed_at is None]
        choices = [("", "—")] + [
            (pk, f"{b.description} ({type_label(b.type)})") for pk, b in self.benefits.items()
        ]
        slots = min(max(len(current) + 3, 5), services.BENEFITS_PER_PRODUCT_MAX)
        for index in range(slots):
            self.fields[f"benefit_{index}"] = forms.ChoiceField(
                label=f"Benefit {index + 1}", choices=choices, required=False
            )
            if index < len(current):
                self.initial[f"benefit_{index}"] = current[index]

    def clean(self):
        cleaned = super().clean()
        chosen, seen = [], set()
        for index in range(len(self.fields)):
            pk = cleaned.get(f"benefit_{index}")
            if not pk:
                continue
            if pk in seen:
                self.add_error(f"benefit_{index}", "This benefit is already listed above.")
                continue
            seen.add(pk)
            chosen.append(self.benefits[pk])
        cleaned["benefits"] = chosen
        return cleaned


class SetProductBenefits(ModalAction):
    name = "set_benefits"
    label = "Set benefits"
    title = "Set the product's benefits"
    description = (
        "What buying this product unlocks, in this order. A benefit added is granted to every "
        "existing holder of the product, one taken away is revoked from them, in batches after saving."
    )
    permission = CHANGE_BENEFITS
    form_class = ProductBenefitsForm
    submit_label = "Save benefits"
    success_message = "Benefits of “{object}” saved."

    def get_form_kwargs(self, request, obj: Product):
        return {"product": obj}

    def perform(self, request, obj: Product, form: ProductBenefitsForm):
        return services.product_benefits_set(
            product=obj, benefits=form.cleaned_data["benefits"], actor=request.user
        )


def type_configured(type_name: str) -> tuple[bool, str]:
    try:
        return strategy_for(type_name).is_configured()
    except LookupError:
        return False, "This type is not installed."
