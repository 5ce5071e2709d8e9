"""The hosted checkout page (server-rendered; the customer's browser talks to it).

Routes (billing/checkout/urls.py), all under ``/checkout/<client_secret>/``:

``""``                 the page: order summary on the left, the form on the right.
``update/``            htmx partial: applies the form through ``checkout_update`` and
                       re-renders the summary, with out-of-band field errors.
``confirm/``           the Pay button: ``checkout_update`` then ``checkout_confirm`` with the
                       PaymentMethod the browser created with Stripe.js.
``status/``            JSON for the "processing" page to poll.
``success/``           thank-you page with the order's invoice number.
``dev/payment-method/`` development only (``STRIPE_API_HOST`` set, test mode): see
                       :func:`dev_payment_method`.

The client secret is the only credential: the page shows nothing the merchant's API
keys guard (no metadata, no ids but the checkout's). Amounts always come from the
services; the browser sends what the customer typed, never a price.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect, HttpResponseClientRefresh, trigger_client_event

from billing.catalog.models import Discount, Price
from billing.checkout import services
from billing.checkout.forms import CheckoutForm, country_choices
from billing.checkout.models import Checkout
from billing.money import Money, format_amount
from billing.payments.models import Payment
from billing.tax import tax_label
from core import clock
from core.errors import Conflict, ServiceError

logger = logging.getLogger("recur.checkout")

# Error slots on the page, next to their fields; "payment" sits above the Pay button and
# "form" at the top of the form.
ERROR_SLOTS = (
    "customer_email",
    "customer_name",
    "country",
    "customer_tax_id",
    "discount_code",
    "seats",
    "amount",
    "payment",
    "form",
)
SERVICE_FIELD_SLOTS = {"billing_address": "country", "payment_method_id": "payment"}
GENERIC_PAYMENT_ERROR = "The payment did not go through. Please try again or use another card."


# --- loading -------------------------------------------------------------------------------


def _load(client_secret: str) -> Checkout | None:
    return (
        Checkout.objects.select_related("organization", "product", "price", "discount", "customer")
        .filter(client_secret=client_secret)
        .first()
    )


def _not_found(request: HttpRequest) -> HttpResponse:
    return render(request, "checkout/not_found.html", status=404)


def _is_expired(checkout: Checkout) -> bool:
    return checkout.status == Checkout.Status.EXPIRED or (
        checkout.status == Checkout.Status.OPEN and checkout.expires_at <= clock.now()
    )


def success_redirect_url(checkout: Checkout) -> str:
    """The merchant's ``success_url`` with ``checkout_id`` added, else Recur's thank-you page."""
    if not checkout.success_url:
        return reverse("checkout-success", args=[checkout.client_secret])
    parts = urlsplit(checkout.success_url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "checkout_id"]
    query.append(("checkout_id", str(checkout.pk)))
    return urlunsplit(parts._replace(query=urlencode(query)))


# --- presentation --------------------------------------------------------------------------


def _minus(formatted: str) -> str:
    """An amount taken off, with a typographic minus sign."""
    return "\u2212" + formatted


def _percent(bps: int) -> str:
    value = (Decimal(bps) / 100).normalize()
    return f"{value:f}%"


def interval_text(product) -> str:
    """ "every month", "every 3 months"; "" for a one-time product."""
    if not product.is_recurring:
        return ""
    count = product.recurring_interval_count or 1
    unit = product.recurring_interval
    return f"every {unit}" if count == 1 else f"every {count} {unit}s"


@dataclass(frozen=True)
class Summary:
    """Everything the order summary and the Pay button show, formatted."""

    product_name: str
    description: str
    interval: str
    price_type: str
    seats: int | None
    trial_days: int | None
    trial_ends_on: Any
    headline: str
    subtotal: str
    discount_code: str
    discount_text: str
    discount_amount: str
    has_discount: bool
    tax_label: str
    tax_amount: str
    tax_note: str
    tax_known: bool
    total: str
    due_now: str
    due_now_minor: int
    needs_card: bool
    pay_label: str
    fine_print: str


def _discount_text(checkout: Checkout) -> str:
    discount = checkout.discount
    if discount is None:
        return ""
    if discount.type == Discount.Type.PERCENTAGE:
        text = f"{_percent(discount.basis_points or 0)} off"
    else:
        amount = (discount.amounts or {}).get(checkout.currency)
        text = f"{format_amount(amount, checkout.currency)} off" if amount is not None else "Discount"
    if checkout.product.is_recurring:
        if discount.duration == Discount.Duration.ONCE:
            text += ", first payment"
        elif discount.duration == Discount.Duration.REPEATING and discount.duration_in_months:
            months = discount.duration_in_months
            text += f" for {months} month{'s' if months != 1 else ''}"
        elif discount.duration == Discount.Duration.FOREVER:
            text += ", every payment"
    return text


def build_summary(checkout: Checkout) -> Summary:
    def money(amount: int) -> str:
        return format_amount(amount, checkout.currency)

    product = checkout.product
    interval = interval_text(product)
    due = services.amount_due_now(checkout)
    country = (checkout.billing_address or {}).get("country", "")
    state = (checkout.billing_address or {}).get("state", "")
    label = tax_label(country, state) if country else "Tax"
    rate = f" ({_percent(checkout.tax_rate_bps)})" if checkout.tax_rate_bps else ""
    tax_note = ""
    if checkout.reverse_charge:
        tax_line = f"{label} reverse charge"
        tax_note = "The buyer accounts for the tax (reverse charge)."
    elif checkout.tax_inclusive:
        tax_line = f"Includes {label}{rate}"
    else:
        tax_line = f"{label}{rate}"
    needs_card = due > 0 or (product.is_recurring and checkout.total > 0)
    trial_ends_on = (
        (clock.now() + timedelta(days=checkout.trial_days)).date() if checkout.trial_days else None
    )
    merchant = checkout.organization.name
    if checkout.trial_days:
        headline = f"{checkout.trial_days} days free"
        pay_label = "Start trial"
        fine_print = (
            f"You won't be charged today. After your trial ends on {trial_ends_on:%B} {trial_ends_on.day}, "
            f"{trial_ends_on.year}, you'll be charged {money(services.renewal_total(checkout))} {interval} "
            "until you cancel."
            if checkout.total
            else ""
        )
    elif due == 0:
        headline = "Free"
        pay_label = "Get it free"
        fine_print = ""
    else:
        headline = money(checkout.total)
        if product.is_recurring:
            pay_label = "Subscribe"
            later = services.renewal_total(checkout)
            if later != checkout.total:
                headline = f"{money(checkout.total)} today"
                charge = f"{money(checkout.total)} today, then {money(later)} {interval}"
            else:
                charge = f"{money(checkout.total)} {interval}"
            fine_print = (
                f"By subscribing, you allow {merchant} to charge your card {charge} until you cancel."
            )
        else:
            pay_label = f"Pay {money(due)}"
            fine_print = ""
    return Summary(
        product_name=product.name,
        description=product.description,
        interval=interval,
        price_type=checkout.price.type,
        seats=checkout.seats,
        trial_days=checkout.trial_days,
        trial_ends_on=trial_ends_on,
        headline=headline,
        subtotal=money(checkout.subtotal),
        discount_code=(checkout.discount.code or checkout.discount.name) if checkout.discount else "",
        discount_text=_discount_text(checkout),
        discount_amount=_minus(money(checkout.discount_amount)),
        has_discount=checkout.discount_id is not None,
        tax_label=tax_line,
        tax_amount=money(checkout.tax),
        tax_note=tax_note,
        tax_known=bool(country),
        total=money(checkout.total),
        due_now=money(due),
        due_now_minor=due,
        needs_card=needs_card,
        pay_label=pay_label,
        fine_print=fine_print,
    )


def _stripe_js_url() -> str:
    host = getattr(settings, "STRIPE_API_HOST", None)
    return host.rstrip("/") + "/js.stripe.com/v3/" if host else "https://js.stripe.com/v3/"


def _publishable_key() -> str:
    if getattr(settings, "STRIPE_LIVE_MODE", False):
        return getattr(settings, "STRIPE_LIVE_PUBLIC_KEY", "")
    return getattr(settings, "STRIPE_TEST_PUBLIC_KEY", "")


def _dev_payment_methods_enabled() -> bool:
    """localstripe's fake Stripe.js cannot create PaymentMethods; see dev_payment_method."""
    return bool(getattr(settings, "STRIPE_API_HOST", None)) and not getattr(
        settings, "STRIPE_LIVE_MODE", False
    )


def _values_from_checkout(checkout: Checkout) -> dict[str, Any]:
    amount = ""
    if checkout.price.type == Price.Type.CUSTOM:
        minor = checkout.custom_amount if checkout.custom_amount is not None else checkout.price.preset_amount
        if minor is not None:
            amount = str(Money(minor, checkout.currency).to_decimal())
    return {
        "customer_email": checkout.customer_email,
        "customer_name": checkout.customer_name,
        "country": (checkout.billing_address or {}).get("country", ""),
        "is_business": checkout.is_business,
        "customer_tax_id": checkout.customer_tax_id,
        "discount_code": (checkout.discount.code or "") if checkout.discount else "",
        "seats": checkout.seats or "",
        "amount": amount,
    }


def _values_from_post(request: HttpRequest, checkout: Checkout) -> dict[str, Any]:
    values = _values_from_checkout(checkout)
    for name in (
        "customer_email",
        "customer_name",
        "country",
        "customer_tax_id",
        "discount_code",
        "seats",
        "amount",
    ):
        if name in request.POST and not (name == "customer_email" and checkout.customer_id):
            values[name] = request.POST[name]
    values["is_business"] = bool(request.POST.get("is_business"))
    return values


def _context(checkout: Checkout, errors: dict[str, str], values: dict[str, Any] | None = None) -> dict:
    price = checkout.price
    return {
        "checkout": checkout,
        "merchant": checkout.organization.name,
        "summary": build_summary(checkout),
        "errors": errors,
        "error_slots": [
            {"name": name, "message": errors.get(name, "")}
            for name in ERROR_SLOTS
            if (name != "seats" or price.type == Price.Type.SEAT_BASED)
            and (name != "amount" or price.type == Price.Type.CUSTOM)
        ],
        "values": values if values is not None else _values_from_checkout(checkout),
        "countries": country_choices(),
        "is_seat_based": price.type == Price.Type.SEAT_BASED,
        "is_custom": price.type == Price.Type.CUSTOM,
        "price": price,
        "minimum_amount": format_amount(price.minimum_amount, checkout.currency)
        if price.type == Price.Type.CUSTOM and price.minimum_amount
        else "",
        "test_mode": not getattr(settings, "STRIPE_LIVE_MODE", False),
        "stripe_js_url": _stripe_js_url(),
        "client_config": {
            "publishableKey": _publishable_key(),
            "confirmUrl": reverse("checkout-confirm", args=[checkout.client_secret]),
            "devPaymentMethodUrl": reverse("checkout-dev-payment-method", args=[checkout.client_secret])
            if _dev_payment_methods_enabled()
            else "",
        },
    }


def _slot(checkout: Checkout, field: str | None) -> str:
    slot = SERVICE_FIELD_SLOTS.get(field or "", field or "form")
    if slot == "amount" and checkout.price.type != Price.Type.CUSTOM:
        return "form"  # e.g. a discount leaves less than Stripe's minimum charge
    return slot if slot in ERROR_SLOTS else "form"


def _form_response(
    request: HttpRequest, checkout: Checkout, errors: dict[str, str], *, status: int = 200
) -> HttpResponse:
    """The summary with out-of-band error slots for htmx, else the whole page (no JavaScript)."""
    checkout = _load(checkout.client_secret) or checkout  # what the database holds now
    if request.htmx:
        return render(request, "checkout/_update.html", _context(checkout, errors), status=status)
    return render(
        request,
        "checkout/page.html",
        _context(checkout, errors, _values_from_post(request, checkout)),
        status=status,
    )


def _client_redirect(request: HttpRequest, url: str) -> HttpResponse:
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


def _back_to_page(request: HttpRequest, checkout: Checkout) -> HttpResponse:
    """The checkout left the open state under the customer: show the page as it is now."""
    if request.htmx:
        return HttpResponseClientRefresh()
    return redirect("checkout-page", client_secret=checkout.client_secret)


# --- views ---------------------------------------------------------------------------------


@never_cache
@require_GET
def checkout_page(request: HttpRequest, client_secret: str) -> HttpResponse:
    checkout = _load(client_secret)
    if checkout is None:
        return _not_found(request)
    context = {"checkout": checkout, "merchant": checkout.organization.name}
    if checkout.status == Checkout.Status.SUCCEEDED:
        context["success_url"] = success_redirect_url(checkout)
        return render(request, "checkout/closed.html", {**context, "reason": "succeeded"})
    if _is_expired(checkout):
        return render(request, "checkout/closed.html", {**context, "reason": "expired"}, status=410)
    if checkout.status == Checkout.Status.CONFIRMED:
        context["status_url"] = reverse("checkout-status", args=[client_secret])
        context["stripe_js_url"] = _stripe_js_url()
        context["publishable_key"] = _publishable_key()
        payment = _payment_needing_action(checkout)
        context["action_secret"] = payment.client_secret if payment else ""
        return render(request, "checkout/processing.html", context)
    if checkout.status != Checkout.Status.OPEN:
        return render(request, "checkout/closed.html", {**context, "reason": "closed"}, status=410)
    errors = {"payment": checkout.payment_error} if checkout.payment_error else {}
    return render(request, "checkout/page.html", _context(checkout, errors))


def _apply_update(checkout: Checkout, changes: dict[str, Any]) -> dict[str, str]:
    """``checkout_update`` with what parses; a refused field is left out (a refused discount
    code or tax id is cleared) and the rest applied again, so one typo does not freeze the
    summary. Returns the errors by slot; raises Conflict when the checkout is not open."""
    errors: dict[str, str] = {}
    for _ in range(len(changes) + 1):
        try:
            services.checkout_update(checkout=checkout, **changes)
            return errors
        except Conflict:
            raise
        except ServiceError as exc:
            errors.setdefault(_slot(checkout, exc.field), exc.detail)
            field = exc.field or ""
            if field in ("discount_code", "customer_tax_id") and changes.get(field):
                changes = {**changes, field: ""}
            elif field in changes and field not in ("discount_code", "customer_tax_id"):
                changes = {k: v for k, v in changes.items() if k != field}
            else:
                return errors
    return errors


@never_cache
@require_POST
def checkout_update(request: HttpRequest, client_secret: str) -> HttpResponse:
    checkout = _load(client_secret)
    if checkout is None:
        return _not_found(request)
    if checkout.status != Checkout.Status.OPEN or _is_expired(checkout):
        return _back_to_page(request, checkout)
    form = CheckoutForm(request.POST, checkout=checkout)
    errors = form.field_errors()
    errors.pop("expected_due", None)
    try:
        errors.update({k: v for k, v in _apply_update(checkout, form.changes()).items() if k not in errors})
    except Conflict:
        return _back_to_page(request, checkout)
    return _form_response(request, checkout, errors)


def _payment_needing_action(checkout: Checkout) -> Payment | None:
    return (
        Payment.objects.filter(reference=checkout.reference, status=Payment.Status.REQUIRES_ACTION)
        .exclude(client_secret="")
        .order_by("-attempt")
        .first()
    )


@never_cache
@require_POST
def checkout_confirm(request: HttpRequest, client_secret: str) -> HttpResponse:
    checkout = _load(client_secret)
    if checkout is None:
        return _not_found(request)
    if checkout.status == Checkout.Status.SUCCEEDED:
        return _client_redirect(request, success_redirect_url(checkout))
    if checkout.status != Checkout.Status.OPEN or _is_expired(checkout):
        return _back_to_page(request, checkout)

    form = CheckoutForm(request.POST, checkout=checkout, confirming=True)
    errors = form.field_errors()
    if errors:
        errors.pop("expected_due", None)
        errors.setdefault("form", "Please check the highlighted fields.")
        return _form_response(request, checkout, errors)
    try:
        checkout = services.checkout_update(checkout=checkout, **form.changes())
    except Conflict:
        return _back_to_page(request, checkout)
    except ServiceError as exc:
        return _form_response(request, checkout, {_slot(checkout, exc.field): exc.detail})

    expected = form.cleaned_data.get("expected_due")
    due = services.amount_due_now(checkout)
    if expected is not None and expected != due:
        message = (
            f"The amount due is now {format_amount(due, checkout.currency)}. "
            "Please check your order, then pay again."
        )
        return _form_response(request, checkout, {"form": message})

    payment_method_id = request.POST.get("payment_method_id", "").strip()[:255]
    try:
        checkout = services.checkout_confirm(checkout=checkout, payment_method_id=payment_method_id)
    except Conflict as exc:
        if exc.code == "checkout_succeeded":
            return _client_redirect(request, success_redirect_url(checkout))
        return _back_to_page(request, checkout)
    except ServiceError as exc:
        return _form_response(request, checkout, {_slot(checkout, exc.field): exc.detail})

    if checkout.status == Checkout.Status.SUCCEEDED:
        return _client_redirect(request, success_redirect_url(checkout))
    if checkout.status == Checkout.Status.OPEN:
        return _form_response(request, checkout, {"payment": checkout.payment_error or GENERIC_PAYMENT_ERROR})
    # Confirmed, the payment still under way: 3-D Secure, or a processor that answers later.
    payment = _payment_needing_action(checkout)
    if request.htmx and payment is not None:
        response = _form_response(request, checkout, {})
        return trigger_client_event(
            response, "checkout:authenticate", {"clientSecret": payment.client_secret}
        )
    return _client_redirect(request, reverse("checkout-page", args=[client_secret]))


@never_cache
@require_GET
def checkout_status(request: HttpRequest, client_secret: str) -> JsonResponse:
    """For the processing page's polling: where the checkout stands and where to go next."""
    checkout = _load(client_secret)
    if checkout is None:
        return JsonResponse({"error": "not_found"}, status=404)
    status = "expired" if _is_expired(checkout) else checkout.status
    body: dict[str, Any] = {"status": status, "redirect": None}
    if status == Checkout.Status.SUCCEEDED:
        body["redirect"] = success_redirect_url(checkout)
    elif status != Checkout.Status.CONFIRMED:
        body["redirect"] = reverse("checkout-page", args=[client_secret])
    return JsonResponse(body)


def _order_tax_label(order) -> str:
    if order is None:
        return "Tax"
    address = order.billing_address or {}
    label = (
        tax_label(address.get("country", ""), address.get("state", "")) if address.get("country") else "Tax"
    )
    return f"{label} ({_percent(order.tax_rate_bps)})" if order.tax_rate_bps else label


@never_cache
@require_GET
def checkout_success(request: HttpRequest, client_secret: str) -> HttpResponse:
    checkout = _load(client_secret)
    if checkout is None:
        return _not_found(request)
    if checkout.status != Checkout.Status.SUCCEEDED:
        return redirect("checkout-page", client_secret=client_secret)
    order = services.order_for_checkout(checkout)
    items = list(order.items.order_by("created_at")) if order else []
    currency = order.currency if order else checkout.currency

    def money(amount: int) -> str:
        return format_amount(amount, currency)

    return render(
        request,
        "checkout/success.html",
        {
            "checkout": checkout,
            "merchant": checkout.organization.name,
            "order": order,
            "items": [
                {"label": item.label, "quantity": item.quantity, "amount": money(item.amount)}
                for item in items
            ],
            "subtotal": money(order.subtotal) if order else "",
            "discount": _minus(money(order.discount_amount)) if order and order.discount_amount else "",
            "tax": money(order.tax) if order and order.tax else "",
            "tax_label": _order_tax_label(order),
            "total": money(order.total) if order else "",
            "interval": interval_text(checkout.product),
            "trial_days": checkout.trial_days,
            "renewal_amount": money(checkout.total),
            "email": checkout.customer_email or (checkout.customer.email if checkout.customer else ""),
        },
    )


@never_cache
@require_POST
def dev_payment_method(request: HttpRequest, client_secret: str) -> JsonResponse:
    """Development and tests only: create a PaymentMethod on localstripe for the fake Stripe.js.

    localstripe's Stripe.js implements ``createPaymentMethod`` as a no-op and its server
    only accepts a publishable key for tokens, sources and SetupIntent confirmation, so the
    page cannot create a ``pm_`` from the browser. When ``stripe.createPaymentMethod``
    returns nothing, the page's script posts the fake card element's fields here and this
    view creates the PaymentMethod with the secret key, exactly what real Stripe.js does
    on js.stripe.com. Answers 404 unless ``STRIPE_API_HOST`` is set (never in production)
    and Stripe is in test mode with an ``sk_test_`` key: no card number reaches Recur
    otherwise.
    """
    key = getattr(settings, "STRIPE_TEST_SECRET_KEY", "")
    if not _dev_payment_methods_enabled() or not key.startswith("sk_test_"):
        return JsonResponse({"error": {"message": "Not found."}}, status=404)
    checkout = _load(client_secret)
    if checkout is None or checkout.status != Checkout.Status.OPEN:
        return JsonResponse({"error": {"message": "This checkout is not open."}}, status=404)
    try:
        body = json.loads(request.body or b"{}")
        card = body.get("card") or {}
        number = "".join(ch for ch in str(card.get("number", "")) if ch.isdigit())
        exp_year = int(str(card.get("exp_year", "")).strip() or 0)
        params = {
            "type": "card",
            "card": {
                "number": number,
                "exp_month": int(str(card.get("exp_month", "")).strip() or 0),
                "exp_year": exp_year + 2000 if 0 < exp_year < 100 else exp_year,
                "cvc": str(card.get("cvc", "")).strip(),
            },
        }
        billing = body.get("billing_details")
        if isinstance(billing, dict):
            params["billing_details"] = {
                k: v for k, v in billing.items() if k in ("name", "email", "address") and v
            }
    except (ValueError, TypeError, AttributeError):
        return JsonResponse({"error": {"message": "Your card details are incomplete."}}, status=400)

    import stripe

    client = stripe.StripeClient(key, base_addresses={"api": settings.STRIPE_API_HOST}, max_network_retries=0)
    try:
        payment_method = client.v1.payment_methods.create(params)
    except stripe.StripeError as exc:
        logger.info("localstripe refused a payment method: %s", exc)
        return JsonResponse({"error": {"message": "Your card details are incomplete or invalid."}})
    return JsonResponse({"paymentMethod": {"id": payment_method.id}})
