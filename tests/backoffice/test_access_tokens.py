import re
from datetime import timedelta

import pytest
from django.urls import reverse

from accounts.models import AccessToken, hash_token
from accounts.services import access_token_authenticate
from core import clock
from core.api.scopes import ALL_SCOPES
from core.models import AuditEntry

pytestmark = pytest.mark.django_db

ADD = reverse("admin:accounts_accesstoken_add")


def test_add_form_offers_scopes_as_checkboxes(backoffice, org):
    response = backoffice.get(f"{ADD}?organization={org.pk}")

    html = response.content.decode()
    assert response.status_code == 200
    for scope in ALL_SCOPES:
        assert f'type="checkbox" name="scopes" value="{scope}"' in html
    assert f'<option value="{org.pk}" selected>' in html  # preselected from the link


def test_add_shows_the_secret_once_and_stores_only_its_hash(backoffice, operator, org):
    expires = (clock.now() + timedelta(days=30)).replace(second=0, microsecond=0)

    response = backoffice.post(
        ADD,
        {
            "organization": org.pk,
            "name": "production server",
            "scopes": ["customers:read", "customers:write"],
            "expires_at": expires.strftime("%Y-%m-%dT%H:%M"),
        },
    )

    assert response.status_code == 200
    assert "no-store" in response.headers["Cache-Control"]
    html = response.content.decode()
    secret = re.search(r'id="token-secret" type="text" value="([^"]+)"', html).group(1)
    token = AccessToken.objects.get()
    assert (token.name, token.organization, token.created_by) == ("production server", org, operator)
    assert token.scopes == ["customers:read", "customers:write"]
    assert token.expires_at == expires
    assert token.token_hash == hash_token(secret)
    assert all(secret not in str(getattr(token, f.attname)) for f in AccessToken._meta.concrete_fields)
    assert secret.startswith(token.prefix)
    assert access_token_authenticate(secret=secret) == token
    entry = AuditEntry.objects.get()
    assert entry.action == "access_token.create"
    assert secret not in str(entry.data) and secret not in entry.object_repr

    # Never shown again: not on the token's page, not in the list.
    token_page = backoffice.get(
        reverse("admin:accounts_accesstoken_change", args=[token.pk])
    ).content.decode()
    list_page = backoffice.get(reverse("admin:accounts_accesstoken_changelist")).content.decode()
    assert secret not in token_page and secret not in list_page
    assert token.prefix in list_page


def test_add_with_bad_input_changes_nothing(backoffice, org):
    response = backoffice.post(
        ADD,
        {"organization": org.pk, "name": "", "scopes": [], "expires_at": "2001-01-01T00:00"},
    )

    assert response.status_code == 200
    errors = response.context["form"].errors
    assert set(errors) == {"name", "scopes"}
    assert not AccessToken.objects.exists()


def test_add_with_past_expiry_shows_the_service_error_on_the_field(backoffice, org):
    response = backoffice.post(
        ADD,
        {
            "organization": org.pk,
            "name": "old",
            "scopes": ["customers:read"],
            "expires_at": "2001-01-01T00:00",
        },
    )

    assert response.context["form"].errors == {"expires_at": ["The expiry must be in the future."]}
    assert not AccessToken.objects.exists()


def test_token_pages_cannot_edit_or_delete(backoffice, org, make_token):
    token, _ = make_token(org)
    change = reverse("admin:accounts_accesstoken_change", args=[token.pk])

    html = backoffice.get(change).content.decode()
    assert 'name="_save"' not in html
    assert backoffice.post(change, {"name": "renamed"}).status_code == 403
    assert backoffice.get(reverse("admin:accounts_accesstoken_delete", args=[token.pk])).status_code == 403
    token.refresh_from_db()
    assert token.name == "test"


def test_token_list_status_filter(backoffice, org, make_token):
    active, _ = make_token(org)
    revoked, _ = make_token(org)
    revoked.revoked_at = clock.now()
    revoked.save()
    url = reverse("admin:accounts_accesstoken_changelist")

    assert list(backoffice.get(url + "?status=active").context["cl"].result_list) == [active]
    assert list(backoffice.get(url + "?status=revoked").context["cl"].result_list) == [revoked]
    html = backoffice.get(url).content.decode()
    assert "bo-badge--good" in html and "bo-badge--bad" in html
