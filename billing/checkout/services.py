"""Checkout: a customer buys a product. open -> confirmed -> succeeded | failed; open -> expired.

Amounts are always computed here, on the server. Confirming commits the checkout as
``confirmed`` (discount reserved, customer known) before any processor call; the
payment then settles through ``billing.payments`` (synchronously or by webhook, whichever
comes first) and calls back ``checkout_payment_succeeded`` / ``checkout_payment_failed``
through ``PAYMENT_HOOKS["checkout"]``, so success happens exactly once.
"""

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q

from accounts.models import Customer, Organization
from accounts.selectors import customers_with_email
from billing.catalog import services as catalog
from billing.catalog.models import Price, Product
from billing.catalog.pricing import discount_amount as discount_amount_for
from billing.catalog.pricing import price_subtotal
from billing.checkout.models import Checkout
from billing.money import InvalidAmount, check_chargeable
from billing.orders.models import BillingReason, Order
from billing.orders.services import Line, order_create
from billing.payments import services as payments
from billing.payments.models import Payment
from billing.payments.processor import PaymentProcessor, ProcessorError
from billing.subscriptions.services import subscription_create_for_checkout
from billing.tax import EU_VAT_RATES, TaxQuery, get_tax_engine, tax_id_validate
from core import clock
from core.errors import Conflict, InvalidInput
from core.events.services import event_record, event_record_if_changed, event_snapshot
from core.ids import parse_uuid
from core.locks import lock_one
from core.retry import retry_on_conflict

logger = logging.getLogger("recur.checkout")

CHECKOUT_TTL = timedelta(hours=24)
# A confirmed checkout with no payment in flight after this long was abandoned mid-way.
CONFIRM_STALE_AFTER = timedelta(minutes=15)
CUSTOMER_FIELDS = ("customer_email", "customer_name", "billing_address", "customer_tax_id", "is_business")


# --- amounts -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Amounts:
    subtotal: int
    discount_amount: int
    net: int
    tax: int
    total: int
    tax_rate_bps: int
    tax_inclusive: bool
    reverse_charge: bool


def _country(checkout: Checkout) -> tuple[str, str, str]:
    address = checkout.billing_address or {}
    return address.get("country", ""), address.get("state", ""), address.get("postal_code", "")


def checkout_amounts(checkout: Checkout) -> Amounts:
    """Subtotal, discount, tax and total for the checkout as it stands; raises InvalidInput."""
    subtotal = price_subtotal(
        price=checkout.price, seats=checkout.seats, custom_amount=checkout.custom_amount
    )
    discount = (
        discount_amount_for(discount=checkout.discount, subtotal=subtotal, currency=checkout.currency)
        if checkout.discount
        else 0
    )
    net = subtotal - discount
    country, state, postal_code = _country(checkout)
    inclusive = checkout.organization.tax_behavior == "inclusive"
    result = get_tax_engine().calculate(
        TaxQuery(
            amount=net,
            currency=checkout.currency,
            inclusive=inclusive,
            country=country,
            state=state,
            postal_code=postal_code,
            tax_id=checkout.customer_tax_id,
            is_business=checkout.is_business,
        )
    )
    total = net if inclusive else net + result.tax
    if total > 0 and not checkout.trial_days:
        try:
            check_chargeable(total, checkout.currency)
        except InvalidAmount as exc:
            raise InvalidInput(str(exc), field="amount", code="amount_not_chargeable") from exc
    return Amounts(
        subtotal=subtotal,
        discount_amount=discount,
        net=net,
        tax=result.tax,
        total=total,
        tax_rate_bps=result.rate_bps,
        tax_inclusive=inclusive,
        reverse_charge=result.reverse_charge,
    )


def renewal_total(checkout: Checkout) -> int:
    """What each later period will cost: the total without a discount that does not last
    (``once`` or ``repeating``), since the customer is told the amount they agree to."""
    discount = checkout.discount
    if discount is None or discount.duration == "forever":
        return checkout.total
    checkout.discount = None
    try:
        return checkout_amounts(checkout).total
    finally:
        checkout.discount = discount


def amount_due_now(checkout: Checkout) -> int:
    """A trial collects a payment method but charges nothing today."""
    return 0 if checkout.trial_days else checkout.total


def _apply_amounts(checkout: Checkout) -> None:
    amounts = checkout_amounts(checkout)
    for name, value in amounts.__dict__.items():
        setattr(checkout, name, value)


# --- create and update ---------------------------------------------------------------------


def _resolve_price(*, organization: Organization, product: Product, price_id, currency: str | None) -> Price:
    prices = Price.objects.filter(product=product, is_archived=False)
    if price_id:
        price = prices.filter(pk=price_id).first() if parse_uuid(price_id) else None
        if price is None:
            raise InvalidInput(
                "No active price with this id for the product.", field="price_id", code="not_found"
            )
        if currency and price.currency != currency.lower():
            raise InvalidInput(
                f"This price is in {price.currency}, not {currency.lower()}.",
                field="currency",
                code="currency_mismatch",
            )
        return price
    currency = (currency or organization.default_currency).lower()
    price = prices.filter(currency=currency).first()
    if price is None:
        raise InvalidInput(
            f"The product has no price in {currency}.", field="currency", code="no_price_for_currency"
        )
    return price


def _check_tax_id(checkout: Checkout) -> None:
    if checkout.is_business and checkout.customer_tax_id:
        country, _, _ = _country(checkout)
        if not tax_id_validate(checkout.customer_tax_id, country):
            raise InvalidInput(
                "This tax id is not valid for the billing country.",
                field="customer_tax_id",
                code="invalid_tax_id",
            )


def _set_discount(checkout: Checkout, code: str) -> None:
    if not code:
        checkout.discount = None
        return
    checkout.discount = catalog.discount_find_for_checkout(
        organization=checkout.organization,
        code=code,
        product=checkout.product,
        currency=checkout.currency,
        customer_email=checkout.customer_email,
        at=clock.now(),
        checkout=checkout if checkout.pk else None,  # its own reservation does not count against it
    )


@transaction.atomic
def checkout_create(
    *,
    organization: Organization,
    product_id,
    price_id=None,
    currency: str | None = None,
    customer_id=None,
    customer_email: str = "",
    customer_name: str = "",
    billing_address: dict | None = None,
    customer_tax_id: str = "",
    is_business: bool = False,
    discount_code: str = "",
    seats: int | None = None,
    amount: int | None = None,
    trial_days: int | None = None,
    success_url: str = "",
    metadata: dict[str, str] | None = None,
) -> Checkout:
    product = (
        Product.objects.filter(organization=organization, pk=product_id, is_archived=False).first()
        if parse_uuid(product_id)
        else None
    )
    if product is None:
        raise InvalidInput("No active product with this id.", field="product_id", code="not_found")
    price = _resolve_price(organization=organization, product=product, price_id=price_id, currency=currency)
    customer = None
    if customer_id:
        customer = (
            Customer.objects.filter(organization=organization, pk=customer_id).first()
            if parse_uuid(customer_id)
            else None
        )
        if customer is None:
            raise InvalidInput("No customer with this id.", field="customer_id", code="not_found")
    if trial_days and not product.is_recurring:
        raise InvalidInput(
            "Only subscriptions can have a trial.", field="trial_days", code="trial_not_allowed"
        )
    checkout = Checkout(
        organization=organization,
        product=product,
        price=price,
        currency=price.currency,
        seats=seats if price.type == Price.Type.SEAT_BASED else None,
        custom_amount=amount if price.type == Price.Type.CUSTOM else None,
        trial_days=trial_days or None,
        customer=customer,
        customer_email=(customer.email if customer else customer_email).lower(),
        customer_name=customer.name if customer and not customer_name else customer_name,
        billing_address=billing_address or (customer.billing_address if customer else None),
        customer_tax_id=customer_tax_id or (customer.tax_id if customer else ""),
        is_business=is_business,
        success_url=success_url,
        metadata=metadata or {},
        expires_at=clock.now() + CHECKOUT_TTL,
    )
    if price.type == Price.Type.SEAT_BASED and seats is None:
        checkout.seats = price.minimum_seats
    _check_tax_id(checkout)
    _set_discount(checkout, discount_code)
    _apply_amounts(checkout)
    checkout.save()
    event_record(type="checkout.created", obj=checkout)
    return checkout


def _lock_open(checkout: Checkout) -> Checkout:
    checkout = checkout_lock(checkout.pk, related=("organization", "product", "price"))
    if checkout.status == Checkout.Status.SUCCEEDED:
        raise Conflict("This checkout is already paid.", code="checkout_succeeded")
    if checkout.status == Checkout.Status.CONFIRMED:
        raise Conflict("This checkout is being confirmed; wait for the result.", code="checkout_confirming")
    if checkout.status == Checkout.Status.EXPIRED or checkout.expires_at <= clock.now():
        raise Conflict("This checkout has expired; start a new one.", code="checkout_expired")
    if checkout.status != Checkout.Status.OPEN:
        raise Conflict(f"This checkout is {checkout.status}.", code="checkout_not_open")
    return checkout


@retry_on_conflict
@transaction.atomic
def checkout_update(*, checkout: Checkout, **changes: Any) -> Checkout:
    """What the customer fills in on the checkout page; amounts are recomputed."""
    checkout = _lock_open(checkout)
    shown = event_snapshot(obj=checkout)
    for name in CUSTOMER_FIELDS:
        if name in changes:
            value = changes[name]
            setattr(checkout, name, value.lower() if name == "customer_email" else value)
    if "seats" in changes and checkout.price.type == Price.Type.SEAT_BASED:
        checkout.seats = changes["seats"]
    if "amount" in changes and checkout.price.type == Price.Type.CUSTOM:
        checkout.custom_amount = changes["amount"]
    if "discount_code" in changes:
        _set_discount(checkout, changes["discount_code"] or "")
    _check_tax_id(checkout)
    _apply_amounts(checkout)
    checkout.save()
    event_record_if_changed(type="checkout.updated", obj=checkout, before=shown)
    return checkout


# --- confirm -------------------------------------------------------------------------------


TAX_ID_TYPES = {
    "GB": "gb_vat",
    "CH": "ch_vat",
    "NO": "no_vat",
    "AU": "au_abn",
    "CA": "ca_bn",
    "US": "us_ein",
    "IN": "in_gst",
    "BR": "br_cnpj",
}


def tax_id_type_for(country: str) -> str:
    if country in TAX_ID_TYPES:
        return TAX_ID_TYPES[country]
    return "eu_vat" if country in EU_VAT_RATES or country == "EL" else "other"


def _customer_for(checkout: Checkout) -> Customer:
    if checkout.customer_id:
        return checkout.customer
    existing = (
        customers_with_email(checkout.customer_email, organization=checkout.organization)
        .order_by("created_at")
        .first()
    )
    if existing is not None:
        return existing
    from accounts.services import customer_create

    return customer_create(
        organization=checkout.organization,
        email=checkout.customer_email,
        name=checkout.customer_name,
        billing_address=checkout.billing_address,
        tax_id=checkout.customer_tax_id,
        tax_id_type=tax_id_type_for(_country(checkout)[0]) if checkout.customer_tax_id else "",
    )


@retry_on_conflict
@transaction.atomic
def _confirm_begin(*, checkout: Checkout, payment_method_id: str, changes: dict[str, Any]) -> Checkout:
    checkout = _lock_open(checkout)
    shown = event_snapshot(obj=checkout)
    for name in CUSTOMER_FIELDS:
        if name in changes:
            setattr(checkout, name, changes[name].lower() if name == "customer_email" else changes[name])
    if not checkout.customer_email:
        raise InvalidInput("An email address is required.", field="customer_email", code="required")
    _check_tax_id(checkout)
    if checkout.discount_id:  # re-validate: it may have expired since the checkout opened
        _set_discount(checkout, checkout.discount.code or "")
    _apply_amounts(checkout)
    needs_card = amount_due_now(checkout) > 0 or (checkout.product.is_recurring and checkout.total > 0)
    if needs_card and not payment_method_id:
        raise InvalidInput("A payment method is required.", field="payment_method_id", code="required")
    checkout.customer = _customer_for(checkout)
    if checkout.discount_id:
        catalog.discount_reserve(
            discount=checkout.discount, checkout=checkout, customer_email=checkout.customer_email
        )
    checkout.status = Checkout.Status.CONFIRMED
    checkout.confirmed_at = clock.now()
    checkout.payment_error = ""
    checkout.save()
    event_record_if_changed(type="checkout.updated", obj=checkout, before=shown)
    return checkout


def checkout_confirm(
    *,
    checkout: Checkout,
    payment_method_id: str = "",
    processor: PaymentProcessor | None = None,
    **changes: Any,
) -> Checkout:
    """Confirm and pay. Processor calls happen outside any transaction; two confirmations of
    one checkout cannot both pass ``_confirm_begin`` (row lock + status), so one charge at most."""
    checkout = _confirm_begin(checkout=checkout, payment_method_id=payment_method_id, changes=changes)
    customer = checkout.customer
    processor = processor or payments.processor_for(checkout.organization)
    if payment_method_id:
        try:
            customer_ref = payments.customer_processor_sync(customer=customer, processor=processor)
            processor.payment_method_attach(
                processor_customer_id=customer_ref,
                payment_method_id=payment_method_id,
                idempotency_key=f"{checkout.reference}:attach:{payment_method_id}",
            )
        except ProcessorError as exc:
            message = "Your card was declined." if exc.code == "card_declined" else f"Payment failed: {exc}"
            return checkout_reopen(checkout=checkout, error=message)
        Customer.objects.filter(pk=customer.pk).update(default_payment_method_id=payment_method_id)
    if amount_due_now(checkout) == 0:
        return checkout_succeed(checkout=checkout, payment=None)
    payment = payments.payment_create(
        organization=checkout.organization,
        customer=customer,
        reference=checkout.reference,
        amount=checkout.total,
        currency=checkout.currency,
        trigger=Payment.Trigger.PURCHASE,
        payment_method_id=payment_method_id,
    )
    payments.payment_confirm(payment=payment, processor=processor)
    checkout.refresh_from_db()
    return checkout


@retry_on_conflict
@transaction.atomic
def checkout_reopen(*, checkout: Checkout, error: str) -> Checkout:
    """A confirmed checkout whose payment failed goes back to open, for another try."""
    checkout = checkout_lock(checkout.pk)
    if checkout.status != Checkout.Status.CONFIRMED:
        return checkout
    shown = event_snapshot(obj=checkout)
    checkout.status = Checkout.Status.OPEN
    checkout.payment_error = error[:500]
    checkout.save(update_fields=["status", "payment_error", "updated_at"])
    catalog.discount_release(checkout=checkout)
    event_record_if_changed(type="checkout.updated", obj=checkout, before=shown)
    return checkout


# --- success -------------------------------------------------------------------------------


@retry_on_conflict
@transaction.atomic
def checkout_succeed(*, checkout: Checkout, payment: Payment | None) -> Checkout:
    """Exactly once: the order (paid, numbered), the subscription for a recurring product,
    the discount redemption. Called on confirmation without payment or by the payment hook."""
    checkout = checkout_lock(checkout.pk, related=("product", "price", "organization"))
    if checkout.status == Checkout.Status.SUCCEEDED:
        return checkout
    shown = event_snapshot(obj=checkout)
    now = clock.now()
    customer = checkout.customer or _customer_for(checkout)
    product = checkout.product
    subscription = None
    if product.is_recurring:
        subscription = subscription_create_for_checkout(
            checkout=checkout, customer=customer, amount=checkout.subtotal, now=now
        )
    label = product.name + (f" ({checkout.seats} seats)" if checkout.seats else "")
    if subscription is not None and subscription.trial_end:
        lines = [
            Line(
                f"Trial: {label}",
                0,
                quantity=checkout.seats or 1,
                price_id=checkout.price_id,
                period_start=now,
                period_end=subscription.trial_end,
            )
        ]
        amounts = {"discount_amount": 0, "tax": 0, "tax_rate_bps": 0}
    else:
        lines = [
            Line(
                label,
                checkout.subtotal,
                quantity=checkout.seats or 1,
                price_id=checkout.price_id,
                period_start=subscription.current_period_start if subscription else None,
                period_end=subscription.current_period_end if subscription else None,
            )
        ]
        amounts = {
            "discount_amount": checkout.discount_amount,
            "tax": checkout.tax,
            "tax_rate_bps": checkout.tax_rate_bps,
        }
    order_create(
        organization=checkout.organization,
        customer=customer,
        billing_reason=BillingReason.SUBSCRIPTION_CREATE if subscription else BillingReason.PURCHASE,
        currency=checkout.currency,
        lines=lines,
        tax_inclusive=checkout.tax_inclusive,
        reverse_charge=checkout.reverse_charge,
        paid=True,
        checkout=checkout,
        subscription=subscription,
        product=product,
        discount=checkout.discount,
        period_start=subscription.current_period_start if subscription else None,
        period_end=subscription.current_period_end if subscription else None,
        **amounts,
    )
    if checkout.discount_id:
        catalog.discount_redeem(checkout=checkout, customer=customer)
    checkout.status = Checkout.Status.SUCCEEDED
    checkout.customer = customer
    checkout.succeeded_at = now
    checkout.payment_error = ""
    checkout.save()
    event_record_if_changed(type="checkout.updated", obj=checkout, before=shown)
    return checkout


def checkout_lock(checkout_id, *, related: tuple[str, ...] = ()) -> Checkout:
    """Lock a checkout row (first in the lock order of ``core.locks``); ``related`` rows are
    read with it, not locked."""
    checkout = lock_one(Checkout.objects.select_related(*related), checkout_id)
    if checkout is None:
        raise Checkout.DoesNotExist(checkout_id)
    return checkout


def checkout_payment_lock(payment: Payment) -> None:
    """``PAYMENT_LOCK_HOOKS["checkout"]``: the checkout before its payment."""
    checkout_id = payments.reference_id(payment, "checkout")
    if checkout_id:
        lock_one(Checkout, checkout_id)


def _checkout_of(payment: Payment) -> Checkout | None:
    checkout_id = payments.reference_id(payment, "checkout")
    return Checkout.objects.filter(pk=checkout_id).first() if checkout_id else None


def checkout_payment_succeeded(payment: Payment) -> None:
    """Money was taken: the checkout succeeds, whatever state it was left in."""
    checkout = _checkout_of(payment)
    if checkout is not None:
        checkout_succeed(checkout=checkout, payment=payment)


def checkout_payment_failed(payment: Payment) -> None:
    checkout = _checkout_of(payment)
    if checkout is None:
        return
    later = Payment.objects.filter(reference=payment.reference, attempt__gt=payment.attempt).exists()
    if not later:  # an older attempt's failure says nothing about the current one
        checkout_reopen(checkout=checkout, error=payment.decline_message or "The payment was declined.")


def order_for_checkout(checkout: Checkout) -> Order | None:
    return Order.objects.filter(checkout=checkout).first()


# --- expiry --------------------------------------------------------------------------------


def checkouts_expire() -> dict[str, int]:
    """Expire open checkouts past their TTL and reopen confirmations abandoned mid-way. Idempotent."""
    now = clock.now()
    expired = 0
    for checkout_id in Checkout.objects.filter(status=Checkout.Status.OPEN, expires_at__lte=now).values_list(
        "pk", flat=True
    )[:1000]:
        with transaction.atomic():
            checkout = checkout_lock(checkout_id)
            if checkout.status == Checkout.Status.OPEN and checkout.expires_at <= now:
                checkout.status = Checkout.Status.EXPIRED
                checkout.save(update_fields=["status", "updated_at"])
                catalog.discount_release(checkout=checkout)
                event_record(type="checkout.expired", obj=checkout)
                expired += 1
    reopened = 0
    stale = Checkout.objects.filter(
        status=Checkout.Status.CONFIRMED, confirmed_at__lte=now - CONFIRM_STALE_AFTER
    )
    for checkout in stale[:1000]:
        # A held payment (the processor took another amount) keeps the checkout for an
        # operator: reopening it would let the customer pay a second time.
        in_flight = Payment.objects.filter(
            Q(status__in=[Payment.Status.PENDING, Payment.Status.PROCESSING, Payment.Status.REQUIRES_ACTION])
            | ~Q(hold_reason=""),
            reference=checkout.reference,
        ).exists()
        if not in_flight:
            checkout_reopen(checkout=checkout, error="The confirmation did not complete; please try again.")
            reopened += 1
    return {"expired": expired, "reopened": reopened}
