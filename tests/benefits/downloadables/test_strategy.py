"""The downloadables strategy: properties checked against the organization's files, what a
grant records, and how an update or an archived file changes it."""

import pytest

from benefits import services as benefit_services
from benefits.downloadables import services as file_services
from benefits.models import BenefitGrant
from benefits.tasks import sweep_grants
from core.errors import InvalidInput
from core.events.models import Event
from tests.benefits.downloadables.conftest import process

pytestmark = pytest.mark.django_db


def refused(org, files) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        benefit_services.benefit_create(
            organization=org, type="downloadables", description="Downloads", properties={"files": files}
        )
    assert caught.value.field == "properties.files"
    return caught.value


def test_files_must_be_the_organizations_own_and_available(org, make_org, make_file):
    other = make_org("Other")
    theirs = make_file(b"theirs", organization=other)
    archived = make_file(b"old")
    file_services.file_archive(file=archived)
    assert "No such file" in refused(org, [str(theirs.pk)]).detail
    assert "archived" in refused(org, [str(archived.pk)]).detail
    assert "Not a file id" in refused(org, ["nope"]).detail
    mine = make_file(b"mine")
    assert "twice" in refused(org, [str(mine.pk), str(mine.pk)]).detail
    refused(org, [])
    from benefits.models import Benefit

    assert not Benefit.objects.exists()


def test_another_organizations_file_in_an_update_is_refused(org, make_org, make_file, make_benefit):
    benefit = make_benefit([make_file(b"mine")])
    theirs = make_file(b"theirs", organization=make_org("Other"))
    with pytest.raises(InvalidInput) as caught:
        benefit_services.benefit_update(benefit=benefit, properties={"files": [str(theirs.pk)]})
    assert caught.value.field == "properties.files"
    benefit.refresh_from_db()
    assert benefit.properties["files"] != [str(theirs.pk)]


def test_grant_records_the_files_and_updates_follow_the_benefit(make_file, make_benefit, buy):
    manual, video = make_file(b"manual", name="manual.pdf"), make_file(b"video", name="intro.mp4")
    benefit = make_benefit([manual])
    grant = buy(benefit)
    assert grant.status == "granted"
    assert grant.properties == {
        "files": [
            {
                "id": str(manual.pk),
                "name": "manual.pdf",
                "size": 6,
                "checksum_sha256": manual.checksum_sha256,
                "mime_type": "application/pdf",
            }
        ]
    }
    benefit_services.benefit_update(benefit=benefit, properties={"files": [str(video.pk), str(manual.pk)]})
    process([grant.pk])
    grant.refresh_from_db()
    assert [f["name"] for f in grant.properties["files"]] == ["intro.mp4", "manual.pdf"]
    assert Event.objects.filter(type="benefit_grant.updated", object_id=str(grant.pk)).count() == 1

    file_services.file_archive(file=video)  # leaves every grant of the benefits listing it
    grant.refresh_from_db()
    assert grant.update_requested and grant.next_attempt_at is not None
    process([grant.pk])
    grant.refresh_from_db()
    assert [f["name"] for f in grant.properties["files"]] == ["manual.pdf"]
    before = (
        list(BenefitGrant.objects.values_list("status", "properties", "next_attempt_at")),
        Event.objects.count(),
    )
    sweep_grants()
    sweep_grants()
    assert (
        list(BenefitGrant.objects.values_list("status", "properties", "next_attempt_at")),
        Event.objects.count(),
    ) == before
