"""The refund pieces of the order page (billing.orders.admin imports them): the "Refund"
modal action with its preview, and the table of an order's refunds.

Kept here, not in ``billing.refunds.admin``, so the orders admin can import it without a
cycle (the refunds admin uses the orders admin's shared display pieces)."""

import json

from django import forms
from django.template.loader import render_to_string

from billing.money import InvalidAmount, format_amount, get_currency, parse_amount
from billing.orders.models import Order
from billing.refunds import services
from billing.refunds.models import Refund
from core.backoffice.actions import ModalAction
from core.backoffice.display import badge, when
from core.backoffice.timeline import admin_change_url
from core.errors import ServiceError

REFUND_TONES = {"pending": "warn", "succeeded": "good", "failed": "bad", "canceled": "muted"}


def _major(amount: int, currency: str) -> str:
    """Minor units as the plain text the amount field takes back ("12.50", "500" for jpy)."""
    exponent = get_currency(currency).exponent
    if not exponent:
        return str(amount)
    return f"{amount // 10**exponent}.{amount % 10**exponent:0{exponent}d}"


class RefundForm(forms.Form):
    amount = forms.CharField(
        required=False,
        max_length=30,
        help_text="In major units (12.50). Empty refunds everything still refundable.",
    )
    reason = forms.ChoiceField(choices=Refund.Reason.choices, initial=Refund.Reason.REQUESTED_BY_CUSTOMER)
    comment = forms.CharField(
        required=False,
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Recorded with the refund and in the audit log.",
    )
    revoke_benefits = forms.BooleanField(
        required=False,
        label="Revoke benefits",
        help_text="Also end the order's subscription now and take back what the order granted.",
    )

    def __init__(self, *args, order: Order, preview_url: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.order = order
        if preview_url:  # the preview follows the amount as it is typed (htmx)
            self.fields["amount"].widget.attrs.update(
                {
                    "hx-post": preview_url,
                    "hx-trigger": "input changed delay:400ms",
                    "hx-target": "#modal",
                    "hx-swap": "innerHTML",
                    "hx-include": "closest form",
                    "hx-vals": json.dumps({"_preview": "1"}),
                    "autocomplete": "off",
                }
            )

    def clean_amount(self) -> int | None:
        text = (self.cleaned_data.get("amount") or "").strip()
        if not text:
            return None
        try:
            amount = parse_amount(text, self.order.currency)
        except InvalidAmount as exc:
            raise forms.ValidationError(str(exc), code="invalid_amount") from exc
        if amount <= 0:
            raise forms.ValidationError("The amount must be greater than zero.", code="invalid_amount")
        return amount


def refund_preview_context(plan: services.RefundPreview) -> dict:
    currency = plan.currency
    return {
        "amount": format_amount(plan.amount, currency),
        "card_amount": format_amount(plan.card_amount, currency),
        "wallet_amount": format_amount(plan.wallet_amount, currency),
        "tax_amount": format_amount(plan.tax_amount, currency),
        "merchant_balance_change": format_amount(plan.merchant_balance_change, currency),
        "merchant_balance_change_minor": plan.merchant_balance_change,
        "refundable_before": format_amount(plan.refundable_before, currency),
        "refundable_after": format_amount(plan.refundable_after, currency),
        "order_status_after": Order.Status(plan.order_status_after).label.lower(),
        "has_wallet": plan.wallet_amount > 0,
    }


class RefundOrder(ModalAction):
    """Refund a paid order, fully or partly, and send the card part to the processor
    (``refund_request``; ``refund_create`` writes the audit entry)."""

    name = "refund"
    label = "Refund"
    title = "Refund the order"
    description = (
        "Gives money back to the customer: to the card first, the part paid from the customer's "
        "balance back to that balance. The merchant's balance loses the amount without its tax; "
        "the platform fee is kept. Preview shows exactly what will be posted."
    )
    permission = "refunds.add_refund"
    form_class = RefundForm
    submit_label = "Refund"
    danger = True
    preview_template = "backoffice/refund_preview.html"

    def is_available(self, request, obj: Order) -> bool:
        return obj.status in services.REFUNDABLE_STATUSES and obj.refunded_amount < obj.total

    def get_form_kwargs(self, request, obj: Order):
        return {"order": obj, "preview_url": self.url(obj)}

    def get_initial(self, request, obj: Order):
        refundable = services.order_refundable(obj)
        return {"amount": _major(refundable, obj.currency) if refundable else ""}

    def get_facts(self, request, obj: Order):
        return [
            ("Customer", obj.customer.email),
            ("Total", format_amount(obj.total, obj.currency)),
            ("Already refunded", format_amount(obj.refunded_amount, obj.currency)),
            ("Refundable", format_amount(services.order_refundable(obj), obj.currency)),
        ]

    def get_context(self, request, obj: Order, form) -> dict:
        if request.method != "GET":
            return {}
        try:  # the full refund, shown when the modal opens
            return {"preview": refund_preview_context(services.refund_preview(order=obj))}
        except ServiceError:
            return {}

    def preview(self, request, obj: Order, form: RefundForm):
        return refund_preview_context(services.refund_preview(order=obj, amount=form.cleaned_data["amount"]))

    def perform(self, request, obj: Order, form: RefundForm):
        data = form.cleaned_data
        return services.refund_request(
            order=obj,
            amount=data["amount"],
            reason=data["reason"],
            comment=data["comment"],
            revoke_benefits=data["revoke_benefits"],
            actor=request.user,
        )

    def get_success_message(self, request, obj: Order, result: Refund) -> str:
        result.refresh_from_db()
        amount = format_amount(result.amount, result.currency)
        if result.status == Refund.Status.SUCCEEDED:
            return f"Refund of {amount} succeeded."
        if result.status == Refund.Status.FAILED:
            return f"Refund of {amount} failed: {result.failure_reason or 'refused by the processor'}."
        return f"Refund of {amount} is pending: the processor will confirm it."


def refunds_table(order: Order) -> str:
    rows = [
        {
            "refund": refund,
            "url": admin_change_url("refunds", "refund", refund.pk),
            "when": when(refund.created_at),
            "status": badge(refund.status, REFUND_TONES.get(refund.status, "muted")),
            "amount": format_amount(refund.amount, refund.currency),
            "card": format_amount(refund.card_amount, refund.currency),
            "wallet": format_amount(refund.wallet_amount, refund.currency) if refund.wallet_amount else "",
            "tax": format_amount(refund.tax_amount, refund.currency),
        }
        for refund in order.refunds.select_related("created_by").order_by("created_at", "id")
    ]
    return render_to_string("backoffice/refunds_table.html", {"rows": rows})
