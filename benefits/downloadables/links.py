"""Signed download links: ``/downloads/<token>``, where the token is the (grant, file) pair
signed with the deployment's secret key and the time it was made (``django.core.signing``,
its own salt). A link works for ``RECUR_DOWNLOAD_LINK_TTL_SECONDS``; rotating ``SECRET_KEY``
(with ``SECRET_KEY_FALLBACKS``) keeps issued links working until they expire.

The token proves only that we issued it: whether the grant still holds the file is checked
at each download (``services.download_open``)."""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core import signing
from django.urls import reverse

from core import clock

SALT = "recur.downloadables.link"


@dataclass(frozen=True)
class Link:
    url: str
    expires_at: datetime


class TokenExpired(Exception):
    pass


class TokenInvalid(Exception):
    pass


def link_ttl() -> timedelta:
    return timedelta(seconds=settings.RECUR_DOWNLOAD_LINK_TTL_SECONDS)


def download_links(*, grant_id, file_ids: list) -> list[Link]:
    """A signed link for each file of a grant (the URL's prefix and expiry worked out once)."""
    prefix = settings.RECUR_PUBLIC_URL.rstrip("/") + reverse("download", kwargs={"token": "T"})[:-1]
    expires_at = clock.now() + link_ttl()
    grant_hex = uuid.UUID(str(grant_id)).hex
    return [
        Link(url=prefix + signing.dumps([grant_hex, uuid.UUID(str(f)).hex], salt=SALT), expires_at=expires_at)
        for f in file_ids
    ]


def download_link(*, grant_id, file_id) -> Link:
    return download_links(grant_id=grant_id, file_ids=[file_id])[0]


def link_read(token: str) -> tuple[uuid.UUID, uuid.UUID]:
    """The (grant id, file id) a token names; ``TokenExpired`` or ``TokenInvalid`` otherwise."""
    try:
        value = signing.loads(token, salt=SALT, max_age=link_ttl())
    except signing.SignatureExpired:
        raise TokenExpired from None
    except signing.BadSignature:
        raise TokenInvalid from None
    try:
        grant_hex, file_hex = value
        return uuid.UUID(hex=grant_hex), uuid.UUID(hex=file_hex)
    except (TypeError, ValueError):  # signed by us, but not a link (another use of the key)
        raise TokenInvalid from None
