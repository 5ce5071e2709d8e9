"""Every change to downloadable files: upload, archive, and a customer's download (checked
and counted). The API, the backoffice and the public download view call these."""

import hashlib
import logging
import mimetypes
import re
import unicodedata
import uuid
from typing import IO

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F

from benefits import grants
from benefits.downloadables import links
from benefits.downloadables.models import DownloadCount, File
from benefits.downloadables.uploads import Digest
from benefits.models import Benefit, BenefitGrant
from core import clock
from core.audit import audit_record
from core.errors import InvalidInput, ServiceError
from core.locks import lock_one

logger = logging.getLogger("recur.downloadables")

TYPE = "downloadables"
NAME_MAX = 255
SHA256 = re.compile(r"^[0-9a-f]{64}$")
MIME = re.compile(r"^[\w.+-]{1,100}/[\w.+-]{1,150}$")
G = BenefitGrant.Status
W = BenefitGrant.Wanted


class FileTooLarge(InvalidInput):
    status = 413


class DownloadRefused(ServiceError):
    """A download link that does not (or no longer) open its file; nothing is counted."""


class LinkInvalid(DownloadRefused):
    status = 403
    type = "permission_error"


class LinkExpired(DownloadRefused):
    status = 410


class AccessRevoked(DownloadRefused):
    status = 403
    type = "permission_error"


class FileUnavailable(DownloadRefused):
    status = 404
    type = "not_found_error"


def too_large_error() -> FileTooLarge:
    limit = settings.RECUR_FILE_MAX_BYTES
    return FileTooLarge(
        f"The file is larger than the {limit:,} bytes allowed.", field="file", code="file_too_large"
    )


def file_name_clean(name: str) -> str:
    """A file name for a download: no folders, no control characters, at most 255 characters."""
    name = unicodedata.normalize("NFC", str(name or "")).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip().strip(".")
    return name[:NAME_MAX]


def _mime_type(content_type: str | None, name: str) -> str:
    content_type = (content_type or "").split(";")[0].strip().lower()
    if content_type and content_type != "application/octet-stream" and MIME.match(content_type):
        return content_type
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def _digest(upload) -> Digest:
    """Read the kept upload once (from memory or its temporary file) when no handler hashed it."""
    hasher, size = hashlib.sha256(), 0
    upload.seek(0)
    for chunk in upload.chunks():
        hasher.update(chunk)
        size += len(chunk)
    upload.seek(0)
    return Digest(hasher.hexdigest(), size)


def file_create(
    *,
    organization,
    upload,
    name: str = "",
    checksum_sha256: str = "",
    digest: Digest | None = None,
    actor=None,
) -> File:
    """Store an uploaded file. ``digest`` is what the upload handler computed while the bytes
    arrived (the API and the backoffice have it); without it the upload is read once here. A
    ``checksum_sha256`` the client sent must match, or nothing is stored (400)."""
    if upload is None:
        raise InvalidInput("Attach the file.", field="file", code="required")
    if upload.size > settings.RECUR_FILE_MAX_BYTES:
        raise too_large_error()
    clean_name = file_name_clean(name or upload.name or "")
    if name and not clean_name:
        raise InvalidInput("The name has no usable characters.", field="name")
    clean_name = clean_name or "file"
    expected = (checksum_sha256 or "").strip().lower()
    if expected and not SHA256.match(expected):
        raise InvalidInput("A SHA-256 is 64 hexadecimal characters.", field="checksum_sha256")
    if digest is None or digest.size != upload.size:
        digest = _digest(upload)
    if expected and expected != digest.sha256:
        raise InvalidInput(
            f"The file's SHA-256 is {digest.sha256}, not the checksum sent.",
            field="checksum_sha256",
            code="checksum_mismatch",
        )
    file_id = uuid.uuid4()
    # The bytes first, under a name we make; the row commits after, and a failed commit removes them.
    path = default_storage.save(f"downloadables/{organization.pk}/{file_id.hex}", upload)
    try:
        with transaction.atomic():
            file = File.objects.create(
                id=file_id,
                organization=organization,
                name=clean_name,
                mime_type=_mime_type(getattr(upload, "content_type", None), clean_name),
                size=digest.size,
                checksum_sha256=digest.sha256,
                storage_path=path,
            )
            audit_record(
                actor=actor,
                action="file.upload",
                target=file,
                organization=organization,
                data={"size": file.size, "checksum_sha256": file.checksum_sha256},
            )
    except BaseException:
        default_storage.delete(path)
        raise
    return file


@transaction.atomic
def file_archive(*, file: File, actor=None) -> File:
    """Stop the file's downloads and take it out of every grant (their update runs in the
    background). The bytes stay in storage. Archiving twice is a no-op."""
    file = lock_one(File, file.pk)
    if file.archived_at is not None:
        return file
    file.archived_at = clock.now()
    file.save(update_fields=["archived_at", "updated_at"])
    benefits = Benefit.objects.filter(
        organization_id=file.organization_id,
        type=TYPE,
        deleted_at__isnull=True,
        properties__files__contains=[str(file.pk)],
    ).values_list("pk", flat=True)
    for benefit_id in benefits:
        grants.grants_request_update(benefit_id=benefit_id)
    audit_record(actor=actor, action="file.archive", target=file, organization=file.organization)
    return file


def download_open(*, token: str) -> tuple[File, IO[bytes]]:
    """The file a customer's link opens, with its bytes open for reading, counted once for
    the grant. Refused (``DownloadRefused``, nothing counted) when the link is expired or not
    ours, the grant is revoked (or being revoked), the file left the benefit or was archived."""
    try:
        grant_id, file_id = links.link_read(token)
    except links.TokenExpired:
        raise LinkExpired(
            "This download link has expired. Open your purchase again for a new link.", code="link_expired"
        ) from None
    except links.TokenInvalid:
        raise LinkInvalid("This download link is not valid.", code="link_invalid") from None
    grant = BenefitGrant.objects.select_related("benefit").filter(pk=grant_id).first()
    if grant is None or grant.benefit.type != TYPE:
        raise LinkInvalid("This download link is not valid.", code="link_invalid")
    if grant.status != G.GRANTED or grant.wanted != W.GRANTED or grant.benefit.deleted_at is not None:
        raise AccessRevoked("Access to this download has ended.", code="access_revoked")
    file = File.objects.filter(pk=file_id, organization_id=grant.organization_id).first()
    in_benefit = str(file_id) in (grant.benefit.properties.get("files") or [])
    if file is None or file.archived_at is not None or not in_benefit:
        raise FileUnavailable("This file is no longer available.", code="file_unavailable")
    try:
        handle = default_storage.open(file.storage_path, "rb")
    except OSError:
        logger.error("file %s: its bytes are missing from storage at %s", file.pk, file.storage_path)
        raise FileUnavailable("This file is not available right now.", code="file_missing") from None
    _count(grant, file)
    return file, handle


def _count(grant: BenefitGrant, file: File) -> None:
    """One more download, as one UPDATE (``F()``: concurrent downloads all count); the first
    download of a file through a grant inserts its row first (two inserting at once: one
    wins, both increments land)."""
    now = clock.now()
    row = DownloadCount.objects.filter(grant=grant, file=file)
    if row.update(downloads=F("downloads") + 1, last_downloaded_at=now, updated_at=now):
        return
    DownloadCount.objects.bulk_create(
        [DownloadCount(organization_id=grant.organization_id, grant=grant, file=file)], ignore_conflicts=True
    )
    row.update(downloads=F("downloads") + 1, last_downloaded_at=now, updated_at=now)
