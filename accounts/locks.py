"""Customer row locks (``core.locks``: after subscriptions, orders, refunds and disputes,
before payments, invoice counters and ledger balances). A customer's row guards its wallet:
every reader and writer of the available balance holds it."""

from collections.abc import Iterable

from accounts.models import Customer
from core.locks import lock_many, lock_one


def customer_lock(customer_id, *, related: tuple[str, ...] = ()) -> Customer | None:
    queryset = Customer.objects.select_related(*related) if related else Customer.objects.all()
    return lock_one(queryset, customer_id)


def customers_lock(customer_ids: Iterable) -> list[Customer]:
    """Lock several customers, in id order."""
    return lock_many(Customer.objects.only("pk"), customer_ids)
