"""Standard Webhooks signatures: secrets, and the three headers every request carries.

``webhook-id`` is the event's public id, the same on every retry and for every endpoint, so a
receiver deduplicates on it. During a rotation's overlap both secrets sign; the
``webhook-signature`` header then holds two space-separated ``v1,`` signatures, and a receiver
holding either secret verifies.
"""

import base64
import secrets
from collections.abc import Iterable
from datetime import datetime

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 24


def secret_generate() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def signed_headers(*, msg_id: str, timestamp: datetime, body: str, secrets_: Iterable[str]) -> dict[str, str]:
    signatures = " ".join(Webhook(s).sign(msg_id, timestamp, body) for s in secrets_ if s)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signatures,
    }
