"""The benefit pages in headless Chromium: the customer page with its grants (and the revoke
dialog opened from it, in htmx's modal), and the benefit settings form with an error. The
screenshots land in /tmp (benefit_customer_grants.png, benefit_revoke_modal.png,
benefit_form_errors.png) for a person to look at."""

from pathlib import Path

import pytest
from django.urls import reverse

from benefits.models import BenefitGrant
from tests.e2e.conftest import browser_page  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)

SCREENSHOTS = Path("/tmp")


def log_in(page, live_server) -> None:
    page.goto(live_server.url + reverse("admin:login"))
    page.fill("#id_username", "operator@recur.test")
    page.fill("#id_password", "operator-pass")
    page.click("input[type=submit]")


def test_customer_grants_and_benefit_form(browser_page, live_server, operator, held, make_benefit):  # noqa: F811
    make_benefit("Team note", type="custom", properties={"note": "Ask us for onboarding."})
    BenefitGrant.objects.filter(pk=held.pk).update(
        error="GitHub said 502 Bad Gateway", errored_at=held.created_at
    )
    page = browser_page.page
    log_in(page, live_server)

    page.goto(live_server.url + reverse("admin:accounts_customer_change", args=[held.customer_id]))
    grants = page.locator("#section-benefit_grants")
    assert "Pro reports" in grants.inner_text() and "GitHub said 502" in grants.inner_text()
    page.screenshot(path=str(SCREENSHOTS / "benefit_customer_grants.png"), full_page=True)
    grants.locator("a.bo-grant-revoke").click()
    page.wait_for_selector("dialog.bo-modal textarea[name=reason]")
    page.screenshot(path=str(SCREENSHOTS / "benefit_revoke_modal.png"), full_page=False)

    page.goto(live_server.url + reverse("admin:benefits_benefit_add") + "?type=feature_flag")
    page.fill("#id_description", "Pro reports")
    page.fill("#id_prop_key", "Not a key!")
    with page.expect_navigation():
        page.click("input[name=_save]")
    page.wait_for_selector(".field-prop_key .errorlist")
    page.screenshot(path=str(SCREENSHOTS / "benefit_form_errors.png"), full_page=True)
    assert not browser_page.js_errors, browser_page.js_errors
