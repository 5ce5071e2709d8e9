from datetime import datetime

from django.db.models import CharField, Exists, OuterRef, Q, QuerySet, Value
from django.db.models.functions import Cast, Concat

from billing.orders.models import Order
from billing.payments.models import Payment

# A payment attempt in these states may still take the money: nothing may start another.
PAYMENT_IN_FLIGHT = (Payment.Status.PENDING, Payment.Status.PROCESSING, Payment.Status.REQUIRES_ACTION)


def order_payments(order: Order) -> QuerySet[Payment]:
    """Every payment attempt for an order, including those made through its checkout."""
    references = [order.reference]
    if order.checkout_id:
        references.append(f"checkout:{order.checkout_id}")
    return Payment.objects.filter(Q(reference__in=references)).order_by("created_at")


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
