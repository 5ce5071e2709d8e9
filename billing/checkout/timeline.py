"""The checkout part of the backoffice timelines (core.backoffice.timeline)."""

from billing.checkout.models import Checkout
from billing.money import format_amount
from core.backoffice.timeline import TimelineEvent, admin_change_url, timelines


@timelines.source("accounts.customer", kind="checkout", permission="checkout.view_checkout", rank=0)
def customer_checkouts(customer, limit: int, now) -> list[TimelineEvent]:
    events = []
    checkouts = (
        Checkout.objects.filter(customer=customer).select_related("product").order_by("-created_at")[:limit]
    )
    for checkout in checkouts:
        url = admin_change_url("checkout", "checkout", checkout.pk)
        product = checkout.product.name
        total = format_amount(checkout.total, checkout.currency)
        if checkout.status == Checkout.Status.SUCCEEDED:
            event = TimelineEvent(
                checkout.succeeded_at or checkout.created_at,
                "checkout",
                f"Checkout for {product} completed",
                total,
                url,
                "good",
            )
        elif checkout.status == Checkout.Status.EXPIRED:
            event = TimelineEvent(
                checkout.expires_at, "checkout", f"Checkout for {product} expired", total, url, "muted"
            )
        elif checkout.status == Checkout.Status.FAILED:
            event = TimelineEvent(
                checkout.created_at,
                "checkout",
                f"Checkout for {product} failed",
                checkout.payment_error,
                url,
                "bad",
            )
        else:
            detail = total + (f" · last error: {checkout.payment_error}" if checkout.payment_error else "")
            event = TimelineEvent(
                checkout.created_at, "checkout", f"Checkout for {product} started", detail, url, "info"
            )
        events.append(event)
    return events
