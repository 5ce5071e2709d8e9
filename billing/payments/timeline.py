"""The payments part of the backoffice timelines (core.backoffice.timeline)."""

from billing.money import format_amount
from billing.payments.models import Payment
from core.backoffice.timeline import TimelineEvent, admin_change_url, timelines

PAYMENT_TONES = {"succeeded": "good", "failed": "bad", "canceled": "muted", "requires_action": "warn"}


def payment_when(payment: Payment):
    if payment.status == Payment.Status.FAILED:
        return payment.failed_at or payment.created_at
    return payment.succeeded_at or payment.created_at


def decline_reason(payment: Payment) -> str:
    reason = payment.decline_message or payment.decline_code or "declined"
    if payment.decline_code and payment.decline_message:
        reason += f" ({payment.decline_code})"
    return reason


def payment_title(payment: Payment) -> str:
    amount = format_amount(payment.amount, payment.currency)
    return f"Payment of {amount} {payment.get_status_display().lower()}"


@timelines.source("accounts.customer", kind="payment", permission="payments.view_payment", rank=1)
def customer_payments(customer, limit: int, now) -> list[TimelineEvent]:
    events = []
    for payment in Payment.objects.filter(customer=customer).order_by("-created_at")[:limit]:
        if payment.status == Payment.Status.FAILED:
            detail = f"attempt {payment.attempt} · {decline_reason(payment)}"
        else:
            detail = f"attempt {payment.attempt} · {payment.get_trigger_display().lower()}"
            if payment.amount_refunded:
                detail += f" · refunded {format_amount(payment.amount_refunded, payment.currency)}"
        events.append(
            TimelineEvent(
                payment_when(payment),
                "payment",
                payment_title(payment),
                detail,
                admin_change_url("payments", "payment", payment.pk),
                PAYMENT_TONES.get(payment.status, "info"),
            )
        )
    return events
