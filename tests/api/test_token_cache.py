"""A process remembers the tokens it authenticated, and forgets them the moment any process
changes a token or an organization (``accounts.token_cache``)."""

import subprocess
import sys
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from accounts import services
from accounts.models import AccessToken, Organization
from core import clock
from tests.workers import ROOT, worker_env


def client_with(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def token_queries(client: APIClient, path: str = "/v1/organization") -> tuple[int, list[str]]:
    with CaptureQueriesContext(connection) as queries:
        status = client.get(path).status_code
    return status, [q["sql"] for q in queries if '"accounts_accesstoken"' in q["sql"]]


@pytest.mark.django_db
def test_a_remembered_token_is_not_read_again_until_a_token_or_organization_changes(org, operator):
    token, secret = services.access_token_create(organization=org, name="cached")
    client = client_with(secret)

    status, reads = token_queries(client)
    assert status == 200 and len(reads) == 2  # the lookup, and the first use recorded
    assert token_queries(client) == (200, [])

    # Any organization's change, by save or by queryset update, makes every process read again.
    Organization.objects.filter(pk=org.pk).update(name="Renamed by update")
    response = client.get("/v1/organization")
    assert response.status_code == 200 and response.json()["name"] == "Renamed by update"
    assert token_queries(client) == (200, [])

    org.name = "Renamed by save"
    org.save()
    assert client.get("/v1/organization").json()["name"] == "Renamed by save"

    services.access_token_revoke(token=token, actor=operator, reason="leaked")
    assert client.get("/v1/organization").status_code == 401


@pytest.mark.django_db
def test_a_remembered_token_still_expires(org):
    expires = clock.now() + timedelta(minutes=5)
    _, secret = services.access_token_create(organization=org, name="short", expires_at=expires)
    client = client_with(secret)
    assert token_queries(client)[0] == 200
    assert token_queries(client) == (200, [])

    with time_machine.travel(expires + timedelta(seconds=1)):
        assert client.get("/v1/organization").status_code == 401


@pytest.mark.django_db
def test_each_request_gets_its_own_instances(org):
    _, secret = services.access_token_create(organization=org, name="t", scopes=["organization:read"])
    client = client_with(secret)
    first = client.get("/v1/organization")
    first.wsgi_request.auth.scopes.append("customers:write")
    first.wsgi_request.auth.organization.name = "changed in memory"

    again = client.get("/v1/organization")
    assert again.json()["name"] == org.name
    assert client.post("/v1/customers", {"email": "a@example.com"}, format="json").status_code == 403


@pytest.mark.django_db(transaction=True)
def test_a_token_revoked_by_another_process_is_refused_at_once(org, operator):
    token, secret = services.access_token_create(organization=org, name="elsewhere")
    client = client_with(secret)
    assert client.get("/v1/organization").status_code == 200
    assert token_queries(client) == (200, [])

    revoke = (
        "from accounts.models import AccessToken, User; from accounts import services; "
        f"services.access_token_revoke(token=AccessToken.objects.get(pk='{token.pk}'), "
        f"actor=User.objects.get(pk={operator.pk}), reason='revoked in another process')"
    )
    subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", revoke],
        cwd=ROOT,
        env=worker_env(),
        check=True,
        timeout=120,
    )

    assert AccessToken.objects.get(pk=token.pk).revoked_at is not None
    assert client.get("/v1/organization").status_code == 401
