"""Small HTML helpers shared by admin pages."""

import json
from datetime import UTC, datetime
from typing import Any

from django.contrib.admin.utils import quote
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Model
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from core.addresses import address_lines

BADGE_TONES = ("good", "warn", "bad", "muted", "info")


def badge(text: str, tone: str = "muted") -> SafeString:
    """A coloured status pill: ``badge("active", "good")``."""
    if tone not in BADGE_TONES:
        raise ValueError(f"unknown badge tone {tone!r}")
    return format_html('<span class="bo-badge bo-badge--{}">{}</span>', tone, text)


def pretty_json(value: Any) -> SafeString:
    """JSON, indented and escaped, in a <pre> block."""
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, cls=DjangoJSONEncoder)
    return format_html('<pre class="bo-json">{}</pre>', text)


def when(value: datetime | None) -> SafeString | str:
    """A compact UTC timestamp for list columns: ``2026-11-21 05:49``."""
    if value is None:
        return "—"
    value = value.astimezone(UTC)
    return format_html(
        '<time datetime="{}" title="{} UTC">{}</time>',
        value.isoformat(),
        value.strftime("%Y-%m-%d %H:%M:%S"),
        value.strftime("%Y-%m-%d %H:%M"),
    )


def address_block(address: dict | None) -> SafeString | str:
    """A billing address as its lines (``core.addresses.address_lines``), or a dash."""
    lines = address_lines(address)
    if not lines:
        return "—"
    return format_html(
        '<address class="bo-address">{}</address>',
        format_html_join("", "{}<br>", ((line,) for line in lines)),
    )


def admin_url(obj: Model | None) -> str | None:
    """The backoffice change page of ``obj``, or None (no object, or no page for its model)."""
    if obj is None or obj.pk is None:
        return None
    opts = obj._meta
    try:
        return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[quote(obj.pk)])
    except NoReverseMatch:
        return None


def admin_link(obj: Model | None, label: Any = None) -> SafeString | str:
    """``obj`` (or ``label``) linked to its change page; a dash without an object."""
    if obj is None:
        return "—"
    url = admin_url(obj)
    text = str(obj) if label is None else label
    return format_html('<a href="{}">{}</a>', url, text) if url else format_html("{}", text)


def customer_label(customer) -> str:
    """``Name · email``, or the email alone."""
    return f"{customer.name} · {customer.email}" if customer.name else customer.email
