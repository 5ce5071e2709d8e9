"""What the customer types on the hosted checkout page, turned into service arguments.

The form only parses and checks shapes (an email address, a country code, an amount
written in major units); every business rule (discount codes, seat bounds, tax ids,
minimum charges) stays in ``billing.checkout.services``.
"""

from __future__ import annotations

from typing import Any

from django import forms

from billing.catalog.models import Price
from billing.checkout.models import Checkout
from billing.money import InvalidAmount, parse_amount
from core.addresses import country_choices


class CheckoutForm(forms.Form):
    """The whole page form; the browser always posts every field it shows."""

    customer_email = forms.EmailField(
        max_length=254, required=False, error_messages={"invalid": "Enter a valid email address."}
    )
    customer_name = forms.CharField(max_length=255, required=False)
    country = forms.ChoiceField(required=False, error_messages={"invalid_choice": "Select your country."})
    is_business = forms.BooleanField(required=False)
    customer_tax_id = forms.CharField(max_length=64, required=False)
    discount_code = forms.CharField(max_length=64, required=False)
    seats = forms.IntegerField(
        min_value=1,
        max_value=1_000_000,
        required=False,
        error_messages={"invalid": "Enter a whole number of seats."},
    )
    amount = forms.CharField(max_length=32, required=False)
    # The amount due the customer last saw; a confirmation for another amount is refused.
    expected_due = forms.IntegerField(required=False, min_value=0)

    def __init__(self, *args: Any, checkout: Checkout, confirming: bool = False, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.checkout = checkout
        self.confirming = confirming
        self.fields["country"].choices = [("", "Select your country"), *country_choices()]
        if confirming:
            self.fields["customer_email"].required = not checkout.customer_id
            self.fields["customer_email"].error_messages["required"] = "Enter your email address."
            self.fields["country"].required = True
            self.fields["country"].error_messages["required"] = "Select your country."

    def clean_amount(self) -> int | None:
        text = (self.cleaned_data.get("amount") or "").strip()
        if self.checkout.price.type != Price.Type.CUSTOM or not text:
            return None
        try:
            return parse_amount(text.replace(" ", ""), self.checkout.currency)
        except InvalidAmount:
            raise forms.ValidationError("Enter an amount like 12.50.")

    def clean_customer_tax_id(self) -> str:
        return (self.cleaned_data.get("customer_tax_id") or "").strip()

    def clean_discount_code(self) -> str:
        return (self.cleaned_data.get("discount_code") or "").strip()

    def field_errors(self) -> dict[str, str]:
        """The first message of each invalid field, keyed like the page's error slots."""
        return {name: errors[0] for name, errors in self.errors.items()}

    def changes(self) -> dict[str, Any]:
        """Keyword arguments for ``checkout_update`` from the fields that are valid."""
        data = self.cleaned_data if hasattr(self, "cleaned_data") else {}
        errors = self.errors
        checkout = self.checkout
        changes: dict[str, Any] = {}
        if "customer_email" not in errors and not checkout.customer_id:
            changes["customer_email"] = data.get("customer_email", "")
        if "customer_name" not in errors:
            changes["customer_name"] = data.get("customer_name", "").strip()
        if "country" not in errors:
            country = data.get("country") or ""
            previous = dict(checkout.billing_address or {})
            if not country:
                changes["billing_address"] = None
            elif previous.get("country") == country:
                changes["billing_address"] = previous
            else:  # a state or postal code of another country means nothing here
                changes["billing_address"] = {"country": country}
        is_business = bool(data.get("is_business"))
        changes["is_business"] = is_business
        if "customer_tax_id" not in errors:
            changes["customer_tax_id"] = data.get("customer_tax_id", "") if is_business else ""
        if "discount_code" not in errors:
            changes["discount_code"] = data.get("discount_code", "")
        price_type = checkout.price.type
        if price_type == Price.Type.SEAT_BASED and data.get("seats") is not None:
            changes["seats"] = data["seats"]
        if price_type == Price.Type.CUSTOM and data.get("amount") is not None:
            changes["amount"] = data["amount"]
        return changes
