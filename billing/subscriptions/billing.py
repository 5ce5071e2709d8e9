"""Turning a subscription's pending billing entries into an order: amounts, discount, tax.

Shared by renewals (in batches), immediate change invoices and resumes, so every order a
subscription produces is computed one way. A credit beyond the charges (a downgrade) goes
to the customer's wallet, tax included, as Stripe moves a negative invoice total to the
customer balance; the wallet then pays the next orders (``billing.ledger.wallet``)."""

from dataclasses import dataclass
from datetime import datetime

from billing.catalog.pricing import discount_amount as discount_amount_for
from billing.ledger.postings import ledger_post_wallet_credit
from billing.ledger.wallet import wallet_apply_preview, wallet_carry_unchargeable
from billing.orders.amounts import order_amounts_set
from billing.orders.models import Order, OrderItem
from billing.orders.services import order_settle_new, orders_paid_recorded
from billing.subscriptions.models import BillingEntry, Subscription
from billing.tax import TaxQuery, get_tax_engine

CREDIT_LABEL = "Credited to the customer's balance"
PRORATION_KINDS = (
    BillingEntry.Kind.PRORATION_CREDIT,
    BillingEntry.Kind.PRORATION_DEBIT,
    BillingEntry.Kind.SEATS_INCREASE,
    BillingEntry.Kind.SEATS_DECREASE,
)


@dataclass
class DraftOrder:
    order: Order
    items: list[OrderItem]
    entries: list[BillingEntry]  # consumed by the order
    # A credit beyond the charges, for the customer's wallet: the amount credited (tax
    # included) and the tax it gives back. Posted when the order is saved.
    wallet_credit: int = 0
    wallet_credit_tax: int = 0


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
    product_id=None,
) -> DraftOrder:
    """An unsaved order (with items) for these entries. The discount applies to the cycle
    line (proration lines carry their own, see ``proration``). Credits beyond the charges go
    to the customer's wallet with the tax they give back (computed like the order's own
    tax), so no order total is negative. ``product_id`` names what the order is for (a
    change's new product); the subscription's by default. Writes nothing: see
    ``draft_order_saved``."""
    subtotal = sum(entry.amount for entry in entries)
    wallet_credit = wallet_credit_tax = 0
    items = [
        OrderItem(
            label=entry.label,
            amount=entry.amount,
            proration=entry.kind in PRORATION_KINDS,
            price_id=subscription.price_id if entry.kind == BillingEntry.Kind.CYCLE else None,
            quantity=subscription.seats or 1 if entry.kind == BillingEntry.Kind.CYCLE else 1,
            period_start=entry.period_start,
            period_end=entry.period_end,
        )
        for entry in entries
    ]
    discount = 0
    if apply_discount and subscription.discount is not None:
        cycle_amount = sum(e.amount for e in entries if e.kind == BillingEntry.Kind.CYCLE)
        discount = min(
            max(cycle_amount, 0),
            discount_amount_for(
                discount=subscription.discount, subtotal=cycle_amount, currency=subscription.currency
            ),
        )
    if subtotal - discount < 0:
        # Discounted before credits are netted, so a credit never eats the discount.
        credit = discount - subtotal
        credit_tax, _, credit_inclusive, _ = _tax(subscription, credit)
        wallet_credit = credit if credit_inclusive else credit + credit_tax
        wallet_credit_tax = credit_tax
        items.append(OrderItem(label=CREDIT_LABEL, amount=credit))
        subtotal = discount
    tax, rate_bps, inclusive, reverse_charge = _tax(subscription, subtotal - discount)
    customer = subscription.customer
    order = Order(
        organization=subscription.organization,
        customer=customer,
        status=Order.Status.PENDING,
        billing_reason=billing_reason,
        currency=subscription.currency,
        tax_rate_bps=rate_bps,
        reverse_charge=reverse_charge,
        billing_name=customer.name,
        billing_address=customer.billing_address,
        customer_tax_id=customer.tax_id,
        subscription=subscription,
        product_id=product_id or subscription.product_id,
        discount=subscription.discount if discount else None,
        period_start=period_start,
        period_end=period_end,
    )
    order_amounts_set(order, subtotal=subtotal, discount_amount=discount, tax=tax, tax_inclusive=inclusive)
    for item in items:
        item.order = order
    order._event_items = items  # its event payloads are built from these, not read back
    return DraftOrder(
        order=order,
        items=items,
        entries=entries,
        wallet_credit=wallet_credit,
        wallet_credit_tax=wallet_credit_tax,
    )


def draft_order_settle(draft: DraftOrder, now: datetime) -> bool:
    """Before the order is written, once the wallet was applied (``wallet_apply``): paid at
    once when nothing is left to collect, else due now (``orders.services.order_settle_new``)."""
    return order_settle_new(draft.order, now=now)


def draft_order_preview_settle(draft: DraftOrder) -> None:
    """What ``wallet_apply`` and ``draft_order_settle`` will make of the order, for a
    preview: the wallet applied (read without the lock) and an unchargeable due carried."""
    wallet_apply_preview(order=draft.order)
    wallet_carry_unchargeable(order=draft.order)


def draft_order_saved(draft: DraftOrder, *, paid_recorded: bool = False) -> None:
    """After the order is written, in the same transaction: the ledger posting and event of an
    order paid at once (from the wallet; unless the caller recorded them in bulk) and the
    posting of a credit moved to the customer's wallet."""
    order = draft.order
    if order.status == Order.Status.PAID and not paid_recorded:
        orders_paid_recorded([order])
    if draft.wallet_credit > 0:
        ledger_post_wallet_credit(
            customer=order.customer,
            amount=draft.wallet_credit,
            currency=order.currency,
            tax_amount=draft.wallet_credit_tax,
            idempotency_key=f"order:{order.pk}:credit",
            description=f"Credit from {order} moved to the customer's balance",
            order=order,
        )
