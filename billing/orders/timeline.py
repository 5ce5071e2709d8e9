"""The orders part of the backoffice timelines (core.backoffice.timeline): a customer's orders,
each naming what it was for."""

from billing.money import format_amount
from billing.orders.models import Order
from core.backoffice.timeline import TimelineEvent, admin_change_url, order_label, timelines


def order_product_name(order: Order) -> str:
    """What the order was for: its product (as sold then), else its subscription's."""
    if order.product_id is not None:
        return order.product.name
    if order.subscription_id is not None:
        return order.subscription.product.name
    return ""


@timelines.source("accounts.customer", kind="order", permission="orders.view_order", rank=3)
def customer_orders(customer, limit: int, now) -> list[TimelineEvent]:
    events = []
    orders = (
        Order.objects.filter(customer=customer)
        .select_related("product", "subscription__product")
        .order_by("-created_at")[:limit]
    )
    for order in orders:
        url = admin_change_url("orders", "order", order.pk)
        total = format_amount(order.total, order.currency)
        reason = order.get_billing_reason_display().lower()
        what = order_product_name(order)
        about = f"{what} · {reason}" if what else reason
        if order.paid_at is not None:
            detail = f"{total} · {about}"
            if order.refunded_amount:
                detail += f" · refunded {format_amount(order.refunded_amount, order.currency)}"
            events.append(
                TimelineEvent(order.paid_at, "order", f"Order {order_label(order)} paid", detail, url, "good")
            )
        else:
            tone = {"pending": "warn", "void": "muted"}.get(order.status, "info")
            due = f"{format_amount(order.due, order.currency)} due" if order.status == "pending" else total
            events.append(
                TimelineEvent(
                    order.created_at,
                    "order",
                    f"Order {order_label(order)} {order.get_status_display().lower()}",
                    f"{due} · {about}",
                    url,
                    tone,
                )
            )
    return events
