"""The first upload handler of every request (``FILE_UPLOAD_HANDLERS``): it counts and hashes
each uploaded file while its bytes arrive, and stops reading the request as soon as one file
passes ``RECUR_FILE_MAX_BYTES``, so an oversized upload is neither kept nor read to its end.

What it saw is left on the request (``upload_facts(request)``): the SHA-256 and size of each
file field, and the fields that were too large. The handlers after it keep the bytes.
"""

import hashlib
from dataclasses import dataclass, field

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, StopUpload


@dataclass(frozen=True)
class Digest:
    sha256: str
    size: int


@dataclass
class UploadFacts:
    digests: dict[str, Digest] = field(default_factory=dict)
    too_large: set[str] = field(default_factory=set)


def upload_facts(request) -> UploadFacts:
    """What the handler saw of this request's files (empty before they are parsed)."""
    request = getattr(request, "_request", request)  # DRF's Request wraps Django's
    facts = getattr(request, "_recur_upload_facts", None)
    if facts is None:
        facts = UploadFacts()
        request._recur_upload_facts = facts
    return facts


class CheckedUploadHandler(FileUploadHandler):
    def new_file(self, *args, **kwargs) -> None:
        super().new_file(*args, **kwargs)
        self._hash = hashlib.sha256()
        self._size = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self._size += len(raw_data)
        if self._size > settings.RECUR_FILE_MAX_BYTES:
            if self.request is not None:
                upload_facts(self.request).too_large.add(self.field_name)
            # The rest of the body is not read: the view answers 413 (a form error in the backoffice).
            raise StopUpload(connection_reset=True)
        self._hash.update(raw_data)
        return raw_data

    def file_complete(self, file_size: int) -> None:
        if self.request is not None:
            upload_facts(self.request).digests[self.field_name] = Digest(self._hash.hexdigest(), self._size)
        return None  # the next handler makes the file
