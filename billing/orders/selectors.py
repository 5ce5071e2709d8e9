from datetime import datetime

from django.db.models import CharField, Exists, OuterRef, Q, QuerySet, Value
from django.db.models.functions import Cast, Concat

from billing.orders.models import Order
from billing.payments.models import Payment
from core.ids import parse_uuid

# A payment attempt in these states may still take the money: nothing may start another.
PAYMENT_IN_FLIGHT = (Payment.Status.PENDING, Payment.Status.PROCESSING, Payment.Status.REQUIRES_ACTION)


def _reference_parts(reference: str) -> tuple[str, str | None]:
    kind, _, value = reference.partition(":")
    return kind, (value if parse_uuid(value) else None)


def payment_order_id(payment: Payment):
    """The id of the order a payment is for: its own (``order:<id>``) or the one its checkout
    became (``checkout:<id>``); None for anything else. The one place that reads references
    for orders: collection, refunds, disputes and the ledger all ask here."""
    kind, value = _reference_parts(payment.reference)
    if value is None:
        return None
    if kind == "order":
        return value
    if kind == "checkout":
        return Order.objects.filter(checkout_id=value).values_list("pk", flat=True).first()
    return None


def payment_order(payment: Payment) -> Order | None:
    """The order a payment is for, of the payment's organization (see ``payment_order_id``)."""
    order_id = payment_order_id(payment)
    if order_id is None:
        return None
    return Order.objects.filter(pk=order_id, organization_id=payment.organization_id).first()


def order_payment_references(order: Order) -> list[str]:
    """The references an order's payments are made under: its own, and its checkout's."""
    references = [order.reference]
    if order.checkout_id:
        references.append(f"checkout:{order.checkout_id}")
    return references


def order_payments(order: Order) -> QuerySet[Payment]:
    """Every payment attempt for an order, including those made through its checkout."""
    return Payment.objects.filter(Q(reference__in=order_payment_references(order))).order_by("created_at")


def order_latest_attempt(order: Order) -> Payment | None:
    """The newest attempt made under the order's own reference (collection and dunning)."""
    return Payment.objects.filter(reference=order.reference).order_by("-attempt").first()


def attempt_in_flight() -> Exists:
    """For an Order queryset: an attempt of the outer order is in flight (``order:<id>``)."""
    reference = Concat(Value("order:"), Cast(OuterRef("pk"), CharField()))
    return Exists(Payment.objects.filter(reference=reference, status__in=PAYMENT_IN_FLIGHT))


def orders_awaiting_payment() -> QuerySet[Order]:
    """Orders that still owe money: pending with something due."""
    return Order.objects.filter(status=Order.Status.PENDING, due__gt=0)


def orders_due_for_attempt(*, now: datetime) -> QuerySet[Order]:
    """Orders whose next automatic attempt is due and that have no attempt in flight: what the
    collection sweeps pick up (first attempts and dunning retries alike)."""
    return orders_awaiting_payment().filter(next_payment_attempt_at__lte=now).exclude(attempt_in_flight())


def orders_due_unscheduled() -> QuerySet[Order]:
    """The rule "no order is owed without an attempt scheduled", as the orders breaking it.

    An order that owes money is always in one of three states: an automatic attempt is
    scheduled (``next_payment_attempt_at``, set when the order is written, leased while an
    attempt starts, moved by dunning), an attempt is in flight (its payment settles it), or
    dunning is exhausted (``dunning_deadline`` set and nothing scheduled: the subscription
    is unpaid and waits for the customer). Anything else would never be charged."""
    return (
        orders_awaiting_payment()
        .filter(next_payment_attempt_at__isnull=True, dunning_deadline__isnull=True)
        .exclude(attempt_in_flight())
    )
