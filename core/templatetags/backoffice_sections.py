"""``{% object_sections obj %}``: the panels higher apps registered for the object's page
(core.backoffice.sections)."""

from django import template

from core.backoffice.sections import page_sections

register = template.Library()


@register.inclusion_tag("backoffice/sections.html", takes_context=True)
def object_sections(context, obj):
    return {"sections": page_sections.render(context["request"], obj)}
