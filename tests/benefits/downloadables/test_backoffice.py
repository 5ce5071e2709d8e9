"""Backoffice Files: upload (size limit and checksum mismatch are form errors), list, the
file's page with its downloads, archive."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from benefits.downloadables.models import File
from core.models import AuditEntry
from tests.benefits.downloadables.conftest import LIMIT, sha

pytestmark = pytest.mark.django_db

ADD = "/backoffice/downloadables/file/add/"


def post_upload(backoffice, org, data: bytes, **fields):
    # The fields before the file, as the page sends them.
    body = {"organization": str(org.pk), **fields, "file": SimpleUploadedFile("tool.zip", data)}
    return backoffice.post(ADD, body)


def test_upload_from_the_backoffice(backoffice, org):
    assert backoffice.get(ADD).status_code == 200
    data = b"zip bytes" * 10
    response = post_upload(backoffice, org, data, checksum_sha256=sha(data))
    file = File.objects.get()
    assert response.status_code == 302 and response["Location"].endswith(f"/{file.pk}/change/")
    assert (file.organization, file.name, file.size, file.checksum_sha256) == (org, "tool.zip", 90, sha(data))
    assert AuditEntry.objects.get(action="file.upload").actor_email == "operator@recur.test"
    page = backoffice.get(f"/backoffice/downloadables/file/{file.pk}/change/")
    assert page.status_code == 200 and b"Not downloaded yet" in page.content and b"Archive" in page.content
    listing = backoffice.get("/backoffice/downloadables/file/")
    assert listing.status_code == 200 and b"tool.zip" in listing.content


def test_a_file_over_the_limit_is_a_form_error(backoffice, org):
    response = post_upload(backoffice, org, b"x" * (LIMIT + 1), name="big.zip")
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert list(errors) == ["file"] and "larger than" in errors["file"][0]
    assert not File.objects.exists()


def test_a_checksum_mismatch_is_a_form_error(backoffice, org):
    response = post_upload(backoffice, org, b"real", checksum_sha256=sha(b"fake"))
    assert response.status_code == 200
    assert list(response.context["form"].errors) == ["checksum_sha256"]
    assert not File.objects.exists()


def test_archive_action(backoffice, make_file):
    file = make_file(b"old release")
    url = f"/backoffice/downloadables/file/{file.pk}/archive/"
    assert backoffice.get(url).status_code == 200
    response = backoffice.post(url)
    assert response.status_code == 302
    file.refresh_from_db()
    assert file.archived_at is not None
    assert AuditEntry.objects.filter(action="file.archive", object_id=str(file.pk)).count() == 1
    page = backoffice.get(f"/backoffice/downloadables/file/{file.pk}/change/")
    assert b"/archive/" not in page.content


def test_a_support_operator_may_look_but_not_upload(client, org, make_file):
    from django.contrib.auth.models import Group

    from accounts.models import User
    from core.roles import roles_install

    roles_install()
    user = User.objects.create_user("support@recur.test", "pw", is_staff=True)
    user.groups.add(Group.objects.get(name="support"))
    client.force_login(user)
    file = make_file(b"x")
    assert client.get("/backoffice/downloadables/file/").status_code == 200
    assert client.get(f"/backoffice/downloadables/file/{file.pk}/change/").status_code == 200
    assert client.get(ADD).status_code == 403
    assert client.post(f"/backoffice/downloadables/file/{file.pk}/archive/").status_code == 403
