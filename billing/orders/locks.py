"""Locks of orders and invoice counters, in the order of ``core.locks``: orders before
customers and payments; invoice counters after every other row but the ledger's running
balances."""

from collections.abc import Iterable

from django.db import connection

from accounts.locks import customer_lock
from billing.orders.models import InvoiceCounter, Order
from billing.orders.selectors import payment_order_id
from billing.payments.models import Payment
from core.locks import lock_all, lock_many, lock_one

# The subscription model, through the order's foreign key: orders lock their subscription
# first (the lock order of core.locks) without importing the app above them.
SUBSCRIPTION_MODEL = Order._meta.get_field("subscription").related_model


def order_lock(order_id, *, related: tuple[str, ...] = ()) -> Order | None:
    """Lock one order row (``related`` rows are read with it, not locked). A path that may
    also change the order's subscription locks the subscription first
    (``order_lock_with_subscription``)."""
    queryset = Order.objects.select_related(*related) if related else Order.objects.all()
    return lock_one(queryset, order_id)


def orders_lock(order_ids: Iterable) -> list[Order]:
    return lock_many(Order, order_ids)


def invoice_counters_lock(organization_ids: Iterable) -> dict:
    """Lock the invoice counters of these organizations (in id order, created on first use
    from ``Organization.invoice_next_number``). A transaction that numbers orders of several
    organizations (a renewal chunk) takes them all here at once, so two such transactions
    never wait on each other in a cycle."""
    ids = sorted(set(organization_ids), key=str)
    if not ids:
        return {}
    counters = InvoiceCounter.objects.filter(organization_id__in=ids)
    existing = set(counters.values_list("organization_id", flat=True))
    if missing := [i for i in ids if i not in existing]:
        with connection.cursor() as cursor:
            cursor.execute(
                """
                INSERT INTO orders_invoicecounter (id, organization_id, next_number)
                SELECT gen_random_uuid(), id, invoice_next_number FROM accounts_organization
                WHERE id = ANY(%s)
                ON CONFLICT (organization_id) DO NOTHING
                """,
                [missing],
            )
    return {c.organization_id: c for c in lock_all(counters.order_by("organization_id"))}


def order_lock_with_subscription(
    order_id, *, related: tuple[str, ...] = (), customer: bool = False
) -> Order | None:
    """Lock an order after its subscription (and then, with ``customer``, its customer).
    The subscription an order belongs to never changes, so it is read first without a lock."""
    owner = Order.objects.filter(pk=order_id).values_list("subscription_id", "customer_id").first()
    if owner is None:
        return None
    subscription_id, customer_id = owner
    if subscription_id is not None:
        lock_one(SUBSCRIPTION_MODEL, subscription_id)
    order = order_lock(order_id, related=related)
    if customer and order is not None:
        customer_lock(customer_id)
    return order


def order_payment_lock(payment: Payment) -> None:
    """``PAYMENT_LOCK_HOOKS["order"]``: before a payment of an order is locked, lock the
    order's subscription, the order and its customer (whose wallet the order may draw on)."""
    if payment.reference.startswith("order:") and (order_id := payment_order_id(payment)):
        order_lock_with_subscription(order_id, customer=True)
