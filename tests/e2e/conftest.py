"""Fixtures for the hosted checkout tests: products, and a headless Chromium page.

The browser is Debian's Chromium (``scripts/ensure-chromium.sh`` installs it), driven by
Playwright's sync API; Playwright never downloads a browser here. A test that asks for
``browser_page`` is skipped when /usr/bin/chromium is missing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import pytest

from billing.catalog import services as catalog

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--metrics-recording-only",
]
CHROMIUM_MISSING = not os.access(CHROMIUM, os.X_OK)
SKIP_REASON = f"{CHROMIUM} is missing: run scripts/ensure-chromium.sh to install Debian's chromium"


@pytest.fixture
def make_product(org):
    def make(name="Pro plan", *, recurring=None, prices=None, **kwargs):
        return catalog.product_create(
            organization=kwargs.pop("organization", org),
            name=name,
            recurring_interval=recurring,
            recurring_interval_count=kwargs.pop("interval_count", 1),
            prices=prices or [{"currency": "usd", "type": "fixed", "amount": 2000}],
            **kwargs,
        )

    return make


@pytest.fixture
def ebook(make_product):
    return make_product("E-book", description="The complete guide, as PDF and EPUB.")


@pytest.fixture
def monthly(make_product):
    return make_product("Team plan", recurring="month")


@dataclass
class BrowserPage:
    page: object
    js_errors: list[str] = field(default_factory=list)


@pytest.fixture
def browser_page(monkeypatch):
    """A fresh headless Chromium page; uncaught exceptions and console errors are collected."""
    if CHROMIUM_MISSING:
        pytest.skip(SKIP_REASON)
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an asyncio loop registered as running in this thread,
    # which makes Django refuse ORM calls from the test body; the test is synchronous.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1200, "height": 860}, locale="en-US")
            page = context.new_page()
            page.set_default_timeout(10_000)
            result = BrowserPage(page=page)
            page.on("pageerror", lambda error: result.js_errors.append(str(error)))
            page.on(
                "console",
                lambda message: message.type == "error" and result.js_errors.append(message.text),
            )
            yield result
            context.close()
        finally:
            browser.close()
