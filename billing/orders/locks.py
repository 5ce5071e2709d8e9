"""Locks of orders and invoice counters, in the order of ``core.locks``: orders before
customers and payments; invoice counters after every other row but the ledger's running
balances."""

from collections.abc import Iterable

from django.db import connection

from billing.orders.models import InvoiceCounter, Order
from core.locks import lock_all, lock_many, lock_one


def order_lock(order_id, *, related: tuple[str, ...] = ()) -> Order | None:
    """Lock one order row (``related`` rows are read with it, not locked). A path that also
    changes the order's subscription locks the subscription first
    (``billing.subscriptions.locks.order_lock_with_subscription``)."""
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
