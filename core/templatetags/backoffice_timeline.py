"""``{% object_timeline obj %}``: an object's events from every source registered for its model
(core.backoffice.timeline), newest first, as a panel. ``{% customer_timeline customer %}`` is
the same for a customer (templates/admin/accounts/customer/change_form.html)."""

from django import template

from core.backoffice.timeline import TIMELINE_LIMIT, timelines

register = template.Library()

EMPTY = {
    "accounts.customer": "Nothing yet: no checkout, order, subscription or payment.",
}


@register.inclusion_tag("backoffice/timeline.html", takes_context=True)
def object_timeline(context, obj, limit: int = TIMELINE_LIMIT):
    request = context.get("request")
    events = timelines.build(obj, limit=limit + 1, user=getattr(request, "user", None))
    return {
        "events": events[:limit],
        "truncated": len(events) > limit,
        "limit": limit,
        "empty": EMPTY.get(obj._meta.label_lower, "Nothing yet."),
        "with_actors": any(event.actor for event in events),
    }


@register.inclusion_tag("backoffice/timeline.html", takes_context=True)
def customer_timeline(context, customer):
    return object_timeline(context, customer)
