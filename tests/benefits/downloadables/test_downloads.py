"""Signed download links: the customer's state gives one per file; a link streams the file
and counts it for the grant; an expired, tampered or revoked link is refused and counts
nothing."""

import hashlib
from datetime import datetime, timedelta

import pytest
import time_machine
from django.conf import settings

from benefits import services as benefit_services
from benefits.downloadables import services as file_services
from benefits.downloadables.links import download_link
from benefits.downloadables.models import DownloadCount
from benefits.strategies import strategy_for
from core import clock
from tests.benefits.downloadables.conftest import process

pytestmark = pytest.mark.django_db

DATA = b"PK\x03\x04 the app, zipped " * 20


@pytest.fixture
def setup(make_file, make_benefit, buy):
    app = make_file(DATA, name="app.zip", content_type="application/zip")
    benefit = make_benefit([app])
    return app, benefit, buy(benefit)


def path_of(url: str) -> str:
    return url.removeprefix(settings.RECUR_PUBLIC_URL.rstrip("/"))


def link_path(grant, file) -> str:
    return path_of(download_link(grant_id=grant.pk, file_id=file.pk).url)


def counted() -> list[tuple]:
    return list(DownloadCount.objects.values_list("grant_id", "file_id", "downloads"))


def test_customer_view_gives_a_signed_link_per_file(setup, client):
    app, benefit, grant = setup
    view = strategy_for("downloadables").customer_view(grant=grant, benefit=benefit)
    (entry,) = view["files"]
    assert (entry["id"], entry["name"], entry["size"]) == (str(app.pk), "app.zip", len(DATA))
    assert entry["checksum_sha256"] == hashlib.sha256(DATA).hexdigest()
    assert entry["download_url"].startswith(f"{settings.RECUR_PUBLIC_URL}/downloads/")
    expires = clock.now() + timedelta(seconds=settings.RECUR_DOWNLOAD_LINK_TTL_SECONDS)
    assert abs((expires - datetime.fromisoformat(entry["expires_at"])).total_seconds()) < 5
    response = client.get(path_of(entry["download_url"]))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == DATA


def test_a_download_streams_the_file_and_counts_it_for_the_grant(setup, client):
    app, _, grant = setup
    response = client.get(link_path(grant, app))
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="app.zip"'
    assert response["Content-Type"] == "application/zip"
    assert response["X-Checksum-SHA256"] == hashlib.sha256(DATA).hexdigest()
    assert response["Digest"].startswith("sha-256=")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b"".join(response.streaming_content) == DATA
    assert client.get(link_path(grant, app)).status_code == 200
    assert counted() == [(grant.pk, app.pk, 2)]
    row = DownloadCount.objects.get()
    assert row.last_downloaded_at is not None


def test_an_expired_link_is_410_and_counts_nothing(setup, client):
    app, _, grant = setup
    path = link_path(grant, app)
    later = clock.now() + timedelta(seconds=settings.RECUR_DOWNLOAD_LINK_TTL_SECONDS + 1)
    with time_machine.travel(later, tick=False):
        response = client.get(path)
    assert response.status_code == 410
    assert response.json()["code"] == "link_expired"
    assert "expired" in response.json()["detail"]
    with time_machine.travel(later, tick=False):
        page = client.get(path, HTTP_ACCEPT="text/html,application/xhtml+xml")
    assert (
        page.status_code == 410
        and b"expired" in page.content
        and page["Content-Type"].startswith("text/html")
    )
    assert counted() == []


def test_a_tampered_link_is_403_and_counts_nothing(setup, client, make_file):
    app, _, grant = setup
    path = link_path(grant, app)
    token = path.removeprefix("/downloads/")
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    for bad in (
        flipped,
        token.replace(token.split(":")[0], token.split(":")[0][::-1], 1),
        "nonsense",
        "a:b:c",
    ):
        response = client.get(f"/downloads/{bad}")
        assert (response.status_code, response.json()["code"]) == (403, "link_invalid"), bad
    # A link signed for another file of the organization does not open one the grant lacks.
    other = make_file(b"not in the benefit", name="secret.txt")
    response = client.get(link_path(grant, other))
    assert (response.status_code, response.json()["code"]) == (404, "file_unavailable")
    assert counted() == []


def test_a_revoked_grant_is_403_and_counts_nothing(setup, client):
    app, _, grant = setup
    path = link_path(grant, app)
    benefit_services.benefit_grant_revoke(grant=grant, reason="chargeback")  # wanted now; work queued
    response = client.get(path)
    assert (response.status_code, response.json()["code"]) == (403, "access_revoked")
    process([grant.pk])
    grant.refresh_from_db()
    assert grant.status == "revoked"
    assert client.get(path).status_code == 403
    assert counted() == []


def test_a_file_archived_or_taken_out_of_the_benefit_stops_downloading(setup, client, make_file):
    app, benefit, grant = setup
    extra = make_file(b"extra", name="extra.txt")
    benefit_services.benefit_update(benefit=benefit, properties={"files": [str(app.pk), str(extra.pk)]})
    process([grant.pk])
    grant.refresh_from_db()
    assert client.get(link_path(grant, extra)).status_code == 200
    benefit_services.benefit_update(benefit=benefit, properties={"files": [str(app.pk)]})
    response = client.get(link_path(grant, extra))
    assert (response.status_code, response.json()["code"]) == (404, "file_unavailable")
    file_services.file_archive(file=app)
    assert client.get(link_path(grant, app)).status_code == 404
    assert counted() == [(grant.pk, extra.pk, 1)]


def test_only_get(setup, client):
    app, _, grant = setup
    assert client.post(link_path(grant, app)).status_code == 405
    assert counted() == []


def test_merchants_see_downloads_per_grant(setup, client, api, make_api, make_org):
    app, _, grant = setup
    for _ in range(3):
        assert client.get(link_path(grant, app)).status_code == 200
    assert api.get(f"/v1/files/{app.pk}").json()["downloads"] == 3
    (row,) = api.get(f"/v1/files/{app.pk}/downloads").json()["results"]
    assert (row["grant_id"], row["customer_id"], row["downloads"]) == (
        str(grant.pk),
        str(grant.customer_id),
        3,
    )
    assert api.get(f"/v1/files/{app.pk}/downloads?is_archived=true").status_code == 400
    assert make_api(make_org("Other")).get(f"/v1/files/{app.pk}/downloads").status_code == 404
