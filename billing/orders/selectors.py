from django.db.models import Q, QuerySet

from billing.orders.models import Order
from billing.payments.models import Payment


def order_payments(order: Order) -> QuerySet[Payment]:
    """Every payment attempt for an order, including those made through its checkout."""
    references = [order.reference]
    if order.checkout_id:
        references.append(f"checkout:{order.checkout_id}")
    return Payment.objects.filter(Q(reference__in=references)).order_by("created_at")
