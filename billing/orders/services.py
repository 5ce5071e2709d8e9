"""Orders: what a customer owes for a purchase or a period, numbered gaplessly when paid.

The transition to paid is written here once (``order_mark_paid``, or for orders not yet
written ``order_paid_fields`` then ``orders_paid_recorded``): the status, ``paid_at``, the
invoice number, the end of collection, the ledger posting and the ``order.paid`` event.
Every path (a checkout, a renewal paid from the wallet, a payment that succeeds, an
operator) goes through it."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction

from accounts.models import Customer, Organization
from billing.ledger.services import ledger_post_order_paid
from billing.ledger.wallet import wallet_carry_unchargeable
from billing.orders.amounts import order_amounts_set, platform_fee_for  # noqa: F401 (importers)
from billing.orders.events import order_payloads
from billing.orders.locks import invoice_counters_lock, order_lock
from billing.orders.models import InvoiceCounter, Order, OrderItem
from billing.payments.services import payments_hold_release
from core import clock
from core.audit import audit_record
from core.errors import Conflict, InvalidInput
from core.events.services import event_record, events_record_bulk
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


def order_paid_fields(order: Order, *, now: datetime) -> None:
    """The fields of the transition to paid, set on the order (saved or not; a rollback gives
    the invoice number back). ``orders_paid_recorded`` must follow once it is written. Even a
    voided order is paid when its money arrives: the money was taken."""
    order.status = Order.Status.PAID
    order.paid_at = now
    order.invoice_number = order.invoice_number or invoice_number_assign(organization=order.organization)
    order.next_payment_attempt_at = None


def orders_paid_recorded(orders: Sequence[Order]) -> None:
    """After paid orders are written, in their transaction: their ledger postings and one
    ``order.paid`` event each (one insert for many, the renewal path)."""
    for order in orders:
        ledger_post_order_paid(order=order)
    orders_event_record(type="order.paid", orders=orders)


def order_mark_paid(*, order: Order, now: datetime | None = None) -> bool:
    """Pay a written, locked order (its payment succeeded, or nothing is left to collect).
    Idempotent: an order already paid (or refunded since) is left alone; False then."""
    if order.is_paid:
        return False
    order_paid_fields(order, now=now or clock.now())
    order.save()
    orders_paid_recorded([order])
    return True


def order_settle_new(order: Order, *, now: datetime) -> bool:
    """Before a new order is written, once the customer's wallet was applied: a due the
    processor cannot charge (below its minimum) is carried to the customer's next order
    through the wallet; an order with nothing left to collect (a zero total, a total the
    wallet covers, a carried amount) is paid (``order_paid_fields``: numbered in this
    transaction); an order that owes money gets its first attempt due now, so the collection
    sweep finds it from its row alone even if the message that charges it is lost. True when
    paid: call ``orders_paid_recorded`` after writing it."""
    wallet_carry_unchargeable(order=order)
    if order.due > 0 or order.total < 0:
        order.next_payment_attempt_at = now if order.due > 0 else None
        return False
    order_paid_fields(order, now=now)
    return True


def orders_event_record(*, type: str, orders: Sequence[Order]) -> None:
    """One event per order, their payloads built from the rows in memory (items attached as
    ``_event_items`` or read in one query): the same representation as the API's GET."""
    if not orders:
        return
    if len(orders) == 1 and not hasattr(orders[0], "_event_items"):
        event_record(type=type, obj=orders[0])
        return
    events_record_bulk(type=type, objects=orders, payloads=order_payloads(orders))


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
    """An order from its lines. ``paid`` orders (a checkout whose payment succeeded) are
    numbered and posted at once."""
    now = clock.now()
    order = Order(
        organization=organization,
        customer=customer,
        billing_reason=billing_reason,
        currency=currency,
        tax_rate_bps=tax_rate_bps,
        reverse_charge=reverse_charge,
        billing_name=customer.name,
        billing_address=customer.billing_address,
        customer_tax_id=customer.tax_id,
        **links,
    )
    order_amounts_set(
        order,
        subtotal=sum(line.amount for line in lines),
        discount_amount=discount_amount,
        tax=tax,
        tax_inclusive=tax_inclusive,
    )
    if paid:
        order_paid_fields(order, now=now)
    else:
        # Owed money: the first automatic attempt is due now (see orders_due_unscheduled).
        order.next_payment_attempt_at = now if order.total > 0 else None
    order.save(force_insert=True)
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
    order_event_record(type="order.created", order=order)
    if paid:
        orders_paid_recorded([order])
    return order


def order_refunded_set(*, order: Order, refunded_amount: int, status: str) -> bool:
    """A locked order's refunded amount and status, as its refunds now add up (the refunds app
    counts them): saved with ``order.refunded`` when more was refunded, ``order.updated`` when
    a refund failed and gave some back. False when nothing changed."""
    if (order.refunded_amount, order.status) == (refunded_amount, status):
        return False
    more = refunded_amount > order.refunded_amount
    order.refunded_amount, order.status = refunded_amount, status
    order.save(update_fields=["refunded_amount", "status", "updated_at"])
    order_event_record(type="order.refunded" if more else "order.updated", order=order)
    return True


def order_event_record(*, type: str, order: Order) -> None:
    """Record an event of one order, in the caller's transaction (the order is written)."""
    event_record(type=type, obj=order)


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
    order_event_record(type="order.updated", order=order)
    audit_record(
        actor=actor,
        action="order.release_payment_hold",
        target=order,
        organization=order.organization,
        reason=reason,
        data={"hold": held},
    )
    return order
