"""Backoffice: the license keys list (found by the start of a key or a customer's e-mail),
a key's page with its activations, and its audited actions."""

import pytest
from django.contrib import admin
from django.test import RequestFactory
from django.urls import reverse

from benefits.license_keys import services
from benefits.license_keys.models import LicenseKey, LicenseKeyActivation
from core.models import AuditEntry
from tests.plans import plan_without_seqscan, seq_scanned

pytestmark = pytest.mark.django_db

LIST = reverse("admin:license_keys_licensekey_changelist")


@pytest.fixture
def key(make_benefit, make_key):
    return make_key(make_benefit(prefix="BO", activations={"limit": 2}), email="keeper@example.com")


@pytest.fixture
def other(make_benefit, make_key):
    return make_key(make_benefit(prefix="ZZ"), email="someone@example.com")


def test_list_searches_by_key_start_and_by_email(backoffice, key, other):
    by_start = backoffice.get(LIST, {"q": key.key[:7].lower()}).content.decode()
    assert key.display_key in by_start and other.display_key not in by_start
    by_email = backoffice.get(LIST, {"q": "keeper@example.com"}).content.decode()
    assert key.display_key in by_email and other.display_key not in by_email
    by_id = backoffice.get(LIST, {"q": str(other.pk)}).content.decode()
    assert other.display_key in by_id and key.display_key not in by_id
    whole = backoffice.get(LIST).content.decode()
    assert key.key not in whole  # lists show keys masked


def test_key_page_shows_activations(backoffice, key):
    services.license_key_activate(organization_id=key.organization_id, key=key.key, label="studio-mac")
    url = reverse("admin:license_keys_licensekey_change", args=[key.pk])
    response = backoffice.get(url)
    assert response.status_code == 200
    text = response.content.decode()
    assert "studio-mac" in text and "1 / 2" in text
    for action in ("disable", "revoke", "deactivate"):
        assert reverse(f"admin:license_keys_licensekey_{action}", args=[key.pk]) in text


def test_disable_enable_and_revoke_are_audited(backoffice, operator, key):
    disable = reverse("admin:license_keys_licensekey_disable", args=[key.pk])
    assert backoffice.get(disable).status_code == 200
    assert backoffice.post(disable, {"reason": "abuse"}).status_code in (200, 302)
    key.refresh_from_db()
    assert key.status == "disabled"
    backoffice.post(reverse("admin:license_keys_licensekey_enable", args=[key.pk]), {})
    key.refresh_from_db()
    assert key.status == "granted"
    backoffice.post(reverse("admin:license_keys_licensekey_revoke", args=[key.pk]), {"reason": "leaked"})
    key.refresh_from_db()
    assert key.status == "revoked"
    actions = list(AuditEntry.objects.filter(actor=operator).values_list("action", flat=True).order_by("id"))
    assert actions == ["license_key.update", "license_key.update", "license_key.revoke"]


def test_revoking_a_revoked_key_is_a_form_error(backoffice, key):
    services.license_key_revoke(license_key=key)
    response = backoffice.post(
        reverse("admin:license_keys_licensekey_revoke", args=[key.pk]), {"reason": "x"}
    )
    assert response.status_code == 200
    assert "already revoked" in response.content.decode()


def test_free_an_activation(backoffice, key):
    activation = services.license_key_activate(
        organization_id=key.organization_id, key=key.key, label="old-pc"
    )
    url = reverse("admin:license_keys_licensekey_deactivate", args=[key.pk])
    backoffice.post(url, {"activation": str(activation.pk)})
    assert LicenseKeyActivation.objects.get().deactivated_at is not None
    key.refresh_from_db()
    assert key.activations_count == 0
    assert AuditEntry.objects.filter(action="license_key.deactivate").count() == 1


@pytest.mark.parametrize(
    "term", ["BO-7", "bo-7k2q", "keeper@example.com"], ids=["key start", "lowercase", "email"]
)
def test_search_is_served_by_indexes(operator, key, term):
    request = RequestFactory().get("/", {"q": term})
    request.user = operator
    model_admin = admin.site._registry[LicenseKey]
    queryset, _ = model_admin.get_search_results(request, model_admin.get_queryset(request), term)
    plan = plan_without_seqscan(queryset)
    assert not seq_scanned(plan), plan
    if "@" not in term:
        assert "licensekey_key_prefix_idx" in plan, plan
