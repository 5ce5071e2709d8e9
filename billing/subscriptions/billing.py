"""Turning a subscription's pending billing entries into an order: amounts, discount, tax.

Shared by renewals (in batches), immediate change invoices and resumes, so every order a
subscription produces is computed one way."""

from dataclasses import dataclass
from datetime import datetime

from billing.catalog.pricing import discount_amount as discount_amount_for
from billing.orders.models import Order, OrderItem
from billing.orders.services import platform_fee_for
from billing.subscriptions.models import BillingEntry, Subscription
from billing.tax import TaxQuery, get_tax_engine


@dataclass
class DraftOrder:
    order: Order
    items: list[OrderItem]
    entries: list[BillingEntry]  # consumed by the order
    carry: BillingEntry | None  # credit left over for the next order


def _tax(subscription: Subscription, net: int) -> tuple[int, int, bool, bool]:
    customer = subscription.customer
    address = customer.billing_address or {}
    inclusive = subscription.organization.tax_behavior == "inclusive"
    if net <= 0:
        return 0, 0, inclusive, False
    result = get_tax_engine().calculate(
        TaxQuery(
            amount=net,
            currency=subscription.currency,
            inclusive=inclusive,
            country=address.get("country", ""),
            state=address.get("state", ""),
            postal_code=address.get("postal_code", ""),
            tax_id=customer.tax_id,
            is_business=bool(customer.tax_id),
        )
    )
    return result.tax, result.rate_bps, inclusive, result.reverse_charge


def draft_order(
    *,
    subscription: Subscription,
    entries: list[BillingEntry],
    billing_reason: str,
    period_start: datetime | None,
    period_end: datetime | None,
    apply_discount: bool,
) -> DraftOrder:
    """An unsaved order (with items) for these entries. Credits beyond the charges are
    carried to the next order as a new entry, so no order total is negative."""
    subtotal = sum(entry.amount for entry in entries)
    carry = None
    items = [
        OrderItem(
            label=entry.label,
            amount=entry.amount,
            proration=entry.kind in (BillingEntry.Kind.PRORATION_CREDIT, BillingEntry.Kind.PRORATION_DEBIT),
            price_id=subscription.price_id if entry.kind == BillingEntry.Kind.CYCLE else None,
            quantity=subscription.seats or 1 if entry.kind == BillingEntry.Kind.CYCLE else 1,
            period_start=entry.period_start,
            period_end=entry.period_end,
        )
        for entry in entries
    ]
    if subtotal < 0:
        carry = BillingEntry(
            organization_id=subscription.organization_id,
            subscription=subscription,
            kind=BillingEntry.Kind.PRORATION_CREDIT,
            label="Credit carried over from the previous order",
            amount=subtotal,
            currency=subscription.currency,
        )
        items.append(OrderItem(label="Credit carried to the next order", amount=-subtotal))
        subtotal = 0
    discount = 0
    if apply_discount and subscription.discount is not None:
        cycle_amount = sum(e.amount for e in entries if e.kind == BillingEntry.Kind.CYCLE)
        discount = min(
            subtotal,
            discount_amount_for(
                discount=subscription.discount, subtotal=cycle_amount, currency=subscription.currency
            ),
        )
    net = subtotal - discount
    tax, rate_bps, inclusive, reverse_charge = _tax(subscription, net)
    total = net if inclusive else net + tax
    customer = subscription.customer
    order = Order(
        organization_id=subscription.organization_id,
        customer=customer,
        status=Order.Status.PENDING,
        billing_reason=billing_reason,
        currency=subscription.currency,
        subtotal=subtotal,
        discount_amount=discount,
        net=net,
        tax=tax,
        total=total,
        due=max(total, 0),
        tax_rate_bps=rate_bps,
        tax_inclusive=inclusive,
        reverse_charge=reverse_charge,
        platform_fee=platform_fee_for(organization=subscription.organization, amount=total),
        billing_name=customer.name,
        billing_address=customer.billing_address,
        customer_tax_id=customer.tax_id,
        subscription=subscription,
        product_id=subscription.product_id,
        discount=subscription.discount if discount else None,
        period_start=period_start,
        period_end=period_end,
    )
    for item in items:
        item.order = order
    return DraftOrder(order=order, items=items, entries=entries, carry=carry)
