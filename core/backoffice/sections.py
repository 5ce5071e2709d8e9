"""Panels that apps above a page's owner add to its change page (DESIGN.md §10).

The customer and product pages show, under their form, what higher apps know of the object
(benefits grants, a product's benefits) without importing them. An app registers a
renderer for a model, named by its label, from its admin module:

    @page_sections.section("accounts.customer", key="benefit_grants", title="Benefits",
                           permission="benefits.view_benefitgrant", order=20)
    def customer_grants(request, customer) -> str: ...

and the page's template shows them with ``{% object_sections original %}``. A renderer runs
a bounded number of queries and returns safe HTML.
"""

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from django.db import models
from django.http import HttpRequest

Renderer = Callable[[HttpRequest, models.Model], str]


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    render: Renderer
    permission: str | None = None
    order: int = 0


@dataclass(frozen=True)
class RenderedSection:
    key: str
    title: str
    html: str


class SectionRegistry:
    def __init__(self) -> None:
        self._sections: dict[str, dict[str, Section]] = defaultdict(dict)

    def section(self, model: str, *, key: str, title: str, permission: str | None = None, order: int = 0):
        """Register ``render(request, obj)`` as the ``key`` panel of ``model``'s page;
        registering a key again replaces it."""

        def register(render: Renderer) -> Renderer:
            self._sections[model][key] = Section(key, title, render, permission, order)
            return render

        return register

    def render(self, request: HttpRequest, obj: models.Model) -> list[RenderedSection]:
        user = getattr(request, "user", None)
        shown = []
        for section in sorted(self._sections.get(obj._meta.label_lower, {}).values(), key=lambda s: s.order):
            if section.permission and (user is None or not user.has_perm(section.permission)):
                continue
            shown.append(RenderedSection(section.key, section.title, section.render(request, obj)))
        return shown


page_sections = SectionRegistry()
