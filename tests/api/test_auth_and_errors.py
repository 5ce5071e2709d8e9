from datetime import timedelta

import pytest
from rest_framework.test import APIClient

from accounts import services
from accounts.models import AccessToken, Customer
from core import clock

pytestmark = pytest.mark.django_db

ERROR_KEYS = {"type", "code", "detail", "errors"}


def client_with(secret: str | None, header: str | None = None) -> APIClient:
    client = APIClient()
    if header is not None:
        client.credentials(HTTP_AUTHORIZATION=header)
    elif secret is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


@pytest.mark.parametrize(
    "header",
    [None, "Bearer recur_at_unknown", "Bearer ", "Token abc", "Basic dXNlcjpwdw==", "Bearer " + "x" * 5000],
)
def test_missing_or_unknown_token_is_401(header, org):
    response = client_with(None, header).get("/v1/customers")
    assert response.status_code == 401
    assert set(response.json()) == ERROR_KEYS
    assert response.json()["type"] == "authentication_error"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_revoked_and_expired_tokens_are_401(org, operator):
    token, secret = services.access_token_create(organization=org, name="t")
    assert client_with(secret).get("/v1/customers").status_code == 200
    services.access_token_revoke(token=token, actor=operator, reason="leaked")
    assert client_with(secret).get("/v1/customers").status_code == 401

    soon = clock.now() + timedelta(minutes=5)
    token, secret = services.access_token_create(organization=org, name="t", expires_at=soon)
    AccessToken.objects.filter(pk=token.pk).update(expires_at=clock.now() - timedelta(seconds=1))
    assert client_with(secret).get("/v1/customers").status_code == 401


def test_missing_scope_is_403_and_read_scope_cannot_write(org):
    _, secret = services.access_token_create(organization=org, name="ro", scopes=["customers:read"])
    client = client_with(secret)
    assert client.get("/v1/customers").status_code == 200
    denied = client.post("/v1/customers", {"email": "a@example.com"}, format="json")
    assert denied.status_code == 403
    assert denied.json()["code"] == "insufficient_scope"
    assert "customers:write" in denied.json()["detail"]
    assert client.get("/v1/organization").status_code == 403
    assert not Customer.objects.exists()


def test_write_scope_implies_read(org):
    _, secret = services.access_token_create(organization=org, name="rw", scopes=["customers:write"])
    assert client_with(secret).get("/v1/customers").status_code == 200


def test_last_used_is_recorded(org):
    token, secret = services.access_token_create(organization=org, name="t")
    client_with(secret).get("/v1/customers")
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_malformed_json_is_400_and_writes_nothing(api):
    response = api.post("/v1/customers", '{"email": ', content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"
    assert not Customer.objects.exists()


def test_unsupported_media_type(api):
    response = api.post(
        "/v1/customers", "email=a@example.com", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 415
    assert set(response.json()) == ERROR_KEYS


def test_unknown_route_and_method(api):
    missing = api.get("/v1/no-such-thing")
    assert missing.status_code == 404
    assert set(missing.json()) == ERROR_KEYS
    not_allowed = api.put("/v1/customers", {}, format="json")
    assert not_allowed.status_code == 405
    assert set(not_allowed.json()) == ERROR_KEYS


def test_unknown_and_malformed_ids_are_404(api):
    for bad in ["00000000-0000-0000-0000-000000000000", "not-a-uuid", "1"]:
        response = api.get(f"/v1/customers/{bad}")
        assert response.status_code == 404
        assert response.json()["type"] == "not_found_error"


def test_unhandled_error_is_a_500_in_the_error_format(api, monkeypatch):
    from accounts import api as accounts_api

    def boom(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(accounts_api.services, "customer_create", boom)
    client = api
    client.raise_request_exception = False
    response = client.post("/v1/customers", {"email": "a@example.com"}, format="json")
    assert response.status_code == 500
    assert response.json() == {
        "type": "api_error",
        "code": "internal_error",
        "detail": "Something went wrong on our side.",
        "errors": [],
    }
