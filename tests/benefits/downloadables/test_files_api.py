"""/v1/files: multipart upload with its size limit and checksum, list, get, archive."""

import os

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from benefits.downloadables.models import File
from core.models import AuditEntry
from tests.benefits.downloadables.conftest import LIMIT, sha

pytestmark = pytest.mark.django_db


def stored_files() -> list[str]:
    return [os.path.join(d, f) for d, _, files in os.walk(settings.MEDIA_ROOT) for f in files]


def upload(api, data: bytes, filename: str = "guide.pdf", headers=None, **fields):
    body = {"file": SimpleUploadedFile(filename, data, content_type="application/pdf"), **fields}
    return api.post("/v1/files", body, format="multipart", **(headers or {}))


def assert_nothing_stored():
    assert File.objects.count() == 0
    assert stored_files() == []


def test_upload_stores_the_bytes_with_their_sha256(api, org):
    data = b"%PDF-1.7 " + b"x" * 1000
    response = upload(api, data, checksum_sha256=sha(data).upper())
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["name"] == "guide.pdf"
    assert (body["size"], body["checksum_sha256"], body["mime_type"]) == (
        len(data),
        sha(data),
        "application/pdf",
    )
    assert (body["is_archived"], body["downloads"]) == (False, 0)
    file = File.objects.get(pk=body["id"])
    assert file.organization == org
    with open(os.path.join(settings.MEDIA_ROOT, file.storage_path), "rb") as stored:
        assert stored.read() == data
    assert "guide" not in file.storage_path  # the uploader's name never reaches the disk
    assert AuditEntry.objects.filter(action="file.upload", object_id=str(file.pk)).exists()


def test_name_is_cleaned_and_may_be_given(api):
    response = upload(api, b"abc", filename="notes.txt", name="Release notes.txt")
    assert (response.json()["name"], response.json()["mime_type"]) == ("Release notes.txt", "application/pdf")
    response = api.post(
        "/v1/files",
        {"file": SimpleUploadedFile("a.bin", b"abc", content_type=""), "name": "../../etc/Setup\x07.exe"},
        format="multipart",
    )
    assert response.status_code == 201
    assert response.json()["name"] == "Setup.exe"
    assert response.json()["mime_type"] in ("application/x-msdos-program", "application/octet-stream")


def test_a_file_over_the_limit_is_a_413_on_file_and_nothing_is_stored(api):
    response = upload(api, b"x" * (LIMIT + 1))
    assert response.status_code == 413
    body = response.json()
    assert body["code"] == "file_too_large"
    assert body["errors"] == [{"field": "file", "code": "file_too_large", "detail": body["detail"]}]
    assert_nothing_stored()
    assert upload(api, b"x" * LIMIT).status_code == 201  # the limit itself is allowed


def test_a_body_announced_too_large_is_refused_before_it_is_read(api):
    response = api.post(
        "/v1/files",
        {"file": SimpleUploadedFile("a.bin", b"abc")},
        format="multipart",
        CONTENT_LENGTH=str(LIMIT + 10 * 1024 * 1024),
    )
    assert response.status_code == 413
    assert response.json()["errors"][0]["field"] == "file"
    assert_nothing_stored()


def test_a_checksum_mismatch_is_a_400_and_nothing_is_stored(api):
    response = upload(api, b"the real bytes", checksum_sha256=sha(b"other bytes"))
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "checksum_sha256"
    assert response.json()["code"] == "checksum_mismatch"
    response = upload(api, b"the real bytes", checksum_sha256="not-a-sha")
    assert (response.status_code, response.json()["errors"][0]["field"]) == (400, "checksum_sha256")
    assert_nothing_stored()


def test_bad_bodies(api):
    response = api.post("/v1/files", {"name": "x"}, format="multipart")
    assert (response.status_code, response.json()["errors"][0]["field"]) == (400, "file")
    response = upload(api, b"")
    assert (response.status_code, response.json()["errors"][0]["field"]) == (400, "file")
    assert api.post("/v1/files", {"file": "abc"}, format="json").status_code == 415
    assert_nothing_stored()


def test_list_get_and_archive(api, make_api, make_org, make_file):
    first, second = make_file(b"one", name="one.zip"), make_file(b"two", name="two.zip")
    listed = api.get("/v1/files").json()["results"]
    assert [f["id"] for f in listed] == [str(second.pk), str(first.pk)]
    assert api.get(f"/v1/files/{first.pk}").json()["name"] == "one.zip"
    assert api.delete(f"/v1/files/{first.pk}").status_code == 204
    assert api.delete(f"/v1/files/{first.pk}").status_code == 204  # again: nothing more happens
    assert api.get(f"/v1/files/{first.pk}").json()["is_archived"] is True
    assert [f["id"] for f in api.get("/v1/files?is_archived=false").json()["results"]] == [str(second.pk)]
    assert [f["id"] for f in api.get("/v1/files?is_archived=true").json()["results"]] == [str(first.pk)]
    assert api.get("/v1/files?is_archived=maybe").status_code == 400
    assert AuditEntry.objects.filter(action="file.archive", object_id=str(first.pk)).count() == 1
    stranger = make_api(make_org("Other"))
    assert stranger.get(f"/v1/files/{second.pk}").status_code == 404
    assert stranger.delete(f"/v1/files/{second.pk}").status_code == 404
    assert stranger.get("/v1/files").json()["results"] == []


def test_scopes(make_api, org):
    reader = make_api(org, scopes=["files:read"])
    assert reader.get("/v1/files").status_code == 200
    assert upload(reader, b"abc").status_code == 403
    assert make_api(org, scopes=["benefits:read"]).get("/v1/files").status_code == 403
    assert_nothing_stored()


def test_idempotent_upload_replays_and_another_file_under_the_key_is_refused(api):
    first = upload(api, b"release 1.0", headers={"HTTP_IDEMPOTENCY_KEY": "upload-1"})
    again = upload(api, b"release 1.0", headers={"HTTP_IDEMPOTENCY_KEY": "upload-1"})
    assert (first.status_code, again.status_code) == (201, 201)
    assert again["Idempotent-Replayed"] == "true" and again.json()["id"] == first.json()["id"]
    # The same name with other bytes is another request.
    other = upload(api, b"release 1.1", headers={"HTTP_IDEMPOTENCY_KEY": "upload-1"})
    assert (other.status_code, other.json()["code"]) == (409, "idempotency_key_reused")
    assert File.objects.count() == 1 and len(stored_files()) == 1
