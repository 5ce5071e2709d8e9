import pytest
from django.urls import reverse

from accounts.models import AccessToken
from accounts.services import access_token_authenticate
from core.models import AuditEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def token_and_secret(org, make_token):
    return make_token(org)


@pytest.fixture
def token(token_and_secret):
    return token_and_secret[0]


def revoke_url(token: AccessToken) -> str:
    return reverse("admin:accounts_accesstoken_revoke", args=[token.pk])


def change_url(token: AccessToken) -> str:
    return reverse("admin:accounts_accesstoken_change", args=[token.pk])


def test_change_page_shows_the_revoke_button(backoffice, token):
    html = backoffice.get(change_url(token)).content.decode()

    assert f'hx-get="{revoke_url(token)}"' in html
    assert 'hx-target="#modal"' in html


def test_revoked_token_has_no_revoke_button(backoffice, token):
    backoffice.post(revoke_url(token), {"reason": "leaked"})

    html = backoffice.get(change_url(token)).content.decode()

    assert revoke_url(token) not in html
    assert "leaked (operator@recur.test)" in html  # the revocation reason, from the audit log


def test_get_with_htmx_returns_the_modal_fragment(backoffice, token, htmx):
    response = backoffice.get(revoke_url(token), **htmx)

    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith("<dialog")
    assert "<html" not in html
    assert 'name="reason"' in html
    assert f'hx-post="{revoke_url(token)}"' in html
    assert "csrfmiddlewaretoken" in html
    assert "Revoke token" in html


def test_get_without_htmx_returns_a_full_page(backoffice, token):
    response = backoffice.get(revoke_url(token))

    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" in html and "<dialog" not in html
    assert 'name="reason"' in html
    assert "hx-post" not in html.split('id="content-main"')[1]  # a plain form without JS


def test_post_without_reason_rerenders_the_form_with_the_field_error(backoffice, token, htmx):
    response = backoffice.post(revoke_url(token), {"reason": "   "}, **htmx)

    assert response.status_code == 200
    assert "HX-Redirect" not in response.headers
    assert response.context["form"].errors == {"reason": ["This field is required."]}
    assert "This field is required." in response.content.decode()
    token.refresh_from_db()
    assert token.revoked_at is None
    assert not AuditEntry.objects.exists()


def test_post_with_reason_revokes_audits_and_redirects(backoffice, operator, token_and_secret, htmx):
    token, secret = token_and_secret

    response = backoffice.post(revoke_url(token), {"reason": "leaked in a gist"}, **htmx)

    assert response.status_code == 200
    assert response.headers["HX-Redirect"] == change_url(token)
    token.refresh_from_db()
    assert token.revoked_at is not None
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.object_id, entry.reason) == (
        "access_token.revoke",
        str(token.pk),
        "leaked in a gist",
    )
    assert entry.actor == operator
    assert access_token_authenticate(secret=secret) is None
    # The success message waits for the page htmx redirects to.
    assert "revoked" in backoffice.get(change_url(token)).content.decode()


def test_post_without_htmx_redirects(backoffice, token):
    response = backoffice.post(revoke_url(token), {"reason": "leaked"})

    assert response.status_code == 302
    assert response.url == change_url(token)


def test_revoking_twice_shows_the_conflict(backoffice, token, htmx):
    backoffice.post(revoke_url(token), {"reason": "first"}, **htmx)

    response = backoffice.post(revoke_url(token), {"reason": "second"}, **htmx)

    assert response.status_code == 200
    assert "HX-Redirect" not in response.headers
    assert response.context["form"].non_field_errors() == ["This token is already revoked."]
    assert "This token is already revoked." in response.content.decode()
    assert AuditEntry.objects.count() == 1


@pytest.mark.parametrize("method", ["get", "post"])
def test_user_without_permission_gets_403(client, make_staff, token, htmx, method):
    viewer = make_staff("support")  # may view tokens, may not change them
    client.force_login(viewer)

    response = getattr(client, method)(
        revoke_url(token), {"reason": "x"} if method == "post" else None, **htmx
    )

    assert response.status_code == 403
    token.refresh_from_db()
    assert token.revoked_at is None
    assert revoke_url(token) not in client.get(change_url(token)).content.decode()


def test_unknown_token(backoffice, htmx):
    url = "/backoffice/accounts/accesstoken/00000000-0000-0000-0000-000000000000/revoke/"

    assert backoffice.get(url).status_code == 302  # to the index, with a message
    assert backoffice.get(url, **htmx).status_code == 404  # the modal shows an error instead


def test_other_methods_are_refused(backoffice, token):
    assert backoffice.delete(revoke_url(token)).status_code == 405
