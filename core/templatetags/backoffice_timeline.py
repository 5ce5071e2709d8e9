"""``{% customer_timeline customer %}``: the customer's events (core.backoffice.timeline),
newest first, as a panel. Used by templates/admin/accounts/customer/change_form.html."""

from django import template

from core.backoffice.timeline import TIMELINE_LIMIT
from core.backoffice.timeline import customer_timeline as build_timeline

register = template.Library()


@register.inclusion_tag("backoffice/timeline.html", takes_context=True)
def customer_timeline(context, customer):
    request = context.get("request")
    events = build_timeline(customer, limit=TIMELINE_LIMIT + 1, user=getattr(request, "user", None))
    return {
        "events": events[:TIMELINE_LIMIT],
        "truncated": len(events) > TIMELINE_LIMIT,
        "limit": TIMELINE_LIMIT,
    }
