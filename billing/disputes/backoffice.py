"""The dispute pieces other backoffice pages may show (the order page's disputes table),
plus the wording shared with ``billing.disputes.admin``.

Kept apart from ``billing.disputes.admin`` so ``billing.orders.admin`` can import it
without a cycle (the disputes admin uses the orders admin's shared display pieces)."""

from datetime import datetime, timedelta

from django.template.loader import render_to_string
from django.utils.html import format_html
from django.utils.safestring import SafeString

from billing.disputes.models import Dispute
from billing.money import format_amount
from core import clock
from core.backoffice.display import badge, when
from core.backoffice.timeline import admin_change_url

S = Dispute.Status
DISPUTE_TONES = {
    S.WARNING_NEEDS_RESPONSE: "warn",
    S.WARNING_UNDER_REVIEW: "info",
    S.WARNING_CLOSED: "muted",
    S.NEEDS_RESPONSE: "bad",
    S.UNDER_REVIEW: "info",
    S.WON: "good",
    S.LOST: "bad",
    S.PREVENTED: "muted",
}
AWAITING_RESPONSE = (S.NEEDS_RESPONSE, S.WARNING_NEEDS_RESPONSE)
SOON_DAYS = 3  # evidence due within this many days is emphasised


def status_badge(dispute: Dispute) -> SafeString:
    return badge(dispute.status.replace("_", " "), DISPUTE_TONES.get(dispute.status, "muted"))


def evidence_due(dispute: Dispute, now: datetime | None = None) -> SafeString | str:
    """The evidence deadline; while a response is awaited, ``overdue`` or ``in N days``
    (emphasised when it is close)."""
    due = dispute.evidence_due_by
    if due is None:
        return "—"
    if dispute.status not in AWAITING_RESPONSE:
        return format_html('<span class="bo-quiet">{}</span>', when(due))
    now = now or clock.now()
    left = due - now
    if left.total_seconds() <= 0:
        return format_html('{} <span class="bo-badge bo-badge--bad">overdue</span>', when(due))
    seconds = int(left.total_seconds())
    if seconds < 86400:
        hours = max(1, (seconds + 1800) // 3600)
        text, tone = f"in {hours} hour{'s' if hours != 1 else ''}", "bad"
    else:
        days = (seconds + 43200) // 86400  # to the nearest day
        text = f"in {days} day{'s' if days != 1 else ''}"
        tone = "warn" if left < timedelta(days=SOON_DAYS) else "muted"
    return format_html('{} <span class="bo-badge bo-badge--{}">{}</span>', when(due), tone, text)


def dispute_rows(disputes) -> list[dict]:
    now = clock.now()
    return [
        {
            "dispute": dispute,
            "url": admin_change_url("disputes", "dispute", dispute.pk),
            "when": when(dispute.created_at),
            "status": status_badge(dispute),
            "amount": format_amount(dispute.amount, dispute.currency),
            # The fee is in Stripe's settlement currency, which may differ from the disputed one.
            "fee": format_amount(dispute.fee, dispute.fee_currency or dispute.currency)
            if dispute.funds_withdrawn_at
            else "",
            "evidence": evidence_due(dispute, now),
        }
        for dispute in disputes
    ]


def disputes_table(order) -> str:
    """The disputes of an order (for the order page)."""
    disputes = Dispute.objects.filter(order=order).order_by("created_at")
    return render_to_string("backoffice/disputes/disputes_table.html", {"rows": dispute_rows(disputes)})
