"""Orders: what a customer owes for a purchase or a period, numbered gaplessly when paid."""

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction

from accounts.models import Customer, Organization
from billing.ledger.services import ledger_post_order_paid
from billing.money import percentage_of
from billing.orders.locks import invoice_counters_lock, order_lock
from billing.orders.models import InvoiceCounter, Order, OrderItem
from billing.payments.services import payments_hold_release
from core import clock
from core.audit import audit_record
from core.errors import Conflict, InvalidInput
from core.retry import retry_on_conflict


@dataclass(frozen=True)
class Line:
    label: str
    amount: int
    quantity: int = 1
    proration: bool = False
    price_id: object | None = None
    period_start: datetime | None = None
    period_end: datetime | None = None


def invoice_number_assign(*, organization: Organization) -> str:
    """The next invoice number of the organization. Must run inside the transaction that
    marks the order paid, after its other locks (``core.locks``): the organization's invoice
    counter row is held to commit, so numbers have no gaps and no duplicates, and a rollback
    gives the number back. The organization row itself is not locked."""
    counter = invoice_counters_lock([organization.pk])[organization.pk]
    number = counter.next_number
    InvoiceCounter.objects.filter(pk=counter.pk).update(next_number=number + 1)
    prefix = Organization.objects.filter(pk=organization.pk).values_list("invoice_prefix", flat=True).get()
    return f"{prefix}-{number:05d}"


def platform_fee_for(*, organization: Organization, amount: int) -> int:
    if amount <= 0:
        return 0
    return min(amount, percentage_of(amount, organization.platform_fee_bps) + organization.platform_fee_fixed)


@transaction.atomic
def order_create(
    *,
    organization: Organization,
    customer: Customer,
    billing_reason: str,
    currency: str,
    lines: list[Line],
    discount_amount: int = 0,
    tax: int = 0,
    tax_rate_bps: int = 0,
    tax_inclusive: bool = False,
    reverse_charge: bool = False,
    paid: bool = False,
    **links,
) -> Order:
    """An order from its lines. ``paid`` orders get their invoice number at once."""
    subtotal = sum(line.amount for line in lines)
    net = subtotal - discount_amount
    total = net if tax_inclusive else net + tax
    now = clock.now()
    order = Order.objects.create(
        organization=organization,
        customer=customer,
        status=Order.Status.PAID if paid else Order.Status.PENDING,
        billing_reason=billing_reason,
        currency=currency,
        subtotal=subtotal,
        discount_amount=discount_amount,
        net=net,
        tax=tax,
        total=total,
        due=max(0, total),
        tax_rate_bps=tax_rate_bps,
        tax_inclusive=tax_inclusive,
        reverse_charge=reverse_charge,
        platform_fee=platform_fee_for(organization=organization, amount=total),
        billing_name=customer.name,
        billing_address=customer.billing_address,
        customer_tax_id=customer.tax_id,
        invoice_number=invoice_number_assign(organization=organization) if paid else None,
        paid_at=now if paid else None,
        # Owed money: the first automatic attempt is due now (see orders_due_unscheduled).
        next_payment_attempt_at=None if paid or total <= 0 else now,
        **links,
    )
    OrderItem.objects.bulk_create(
        OrderItem(
            order=order,
            label=line.label[:300],
            amount=line.amount,
            quantity=line.quantity,
            proration=line.proration,
            price_id=line.price_id,
            period_start=line.period_start,
            period_end=line.period_end,
        )
        for line in lines
    )
    if paid:
        ledger_post_order_paid(order=order)
    return order


@retry_on_conflict
@transaction.atomic
def order_payment_hold_release(*, order: Order, actor, reason: str) -> Order:
    """An operator dealt with a held payment (the processor took another amount or currency;
    typically refunded in full at the processor): collection resumes with a new attempt at
    once. The held payment keeps its hold reason: it never counts as paying the order. Audited."""
    if not reason.strip():
        raise InvalidInput("Say what was done about the held payment.", field="reason", code="required")
    order = order_lock(order.pk)
    if not order.payment_hold:
        raise Conflict("This order's collection is not held.", code="order_not_held")
    held = order.payment_hold
    order.payment_hold = ""
    if order.status == Order.Status.PENDING and order.due > 0:
        order.next_payment_attempt_at = clock.now()
    order.save(update_fields=["payment_hold", "next_payment_attempt_at", "updated_at"])
    payments_hold_release(reference=order.reference)
    audit_record(
        actor=actor,
        action="order.release_payment_hold",
        target=order,
        organization=order.organization,
        reason=reason,
        data={"hold": held},
    )
    return order
