"""Making keys and their expiry: the benefit's settings turned into a key's values."""

import secrets
import uuid
from datetime import datetime

from dateutil.relativedelta import relativedelta

# Crockford's base32: no I, L, O or U, so a key read aloud or typed is not mistaken.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
GROUPS, GROUP_LENGTH = 4, 4  # XXXX-XXXX-XXXX-XXXX: 80 random bits
FORMATS = ("groups", "uuid4")
TIMEFRAMES = {"day": "days", "month": "months", "year": "years"}


def key_generate(*, prefix: str = "", format: str = "groups") -> str:
    if format == "uuid4":
        body = str(uuid.uuid4()).upper()
    else:
        body = "-".join("".join(secrets.choice(ALPHABET) for _ in range(GROUP_LENGTH)) for _ in range(GROUPS))
    return f"{prefix}-{body}" if prefix else body


def key_normalize(key: str) -> str:
    """What a customer typed, as keys are stored (generated keys are uppercase)."""
    return key.strip().upper()


def expiry_from(expires: dict | None, anchor: datetime) -> datetime | None:
    """``{"ttl": 1, "timeframe": "year"}`` from ``anchor`` (calendar arithmetic: a month
    from Jan 31 is Feb 28), or None when the benefit's keys do not expire."""
    if not expires:
        return None
    return anchor + relativedelta(**{TIMEFRAMES[expires["timeframe"]]: expires["ttl"]})
