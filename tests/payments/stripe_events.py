"""Build and sign Stripe events the way Stripe does, for what localstripe cannot send."""

import hashlib
import hmac
import json
import time
import uuid

from django.conf import settings
from django.test import TestCase


def event(event_type: str, obj: dict, *, created: int | None = None, event_id: str | None = None) -> dict:
    return {
        "id": event_id or f"evt_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "api_version": "2024-06-20",
        "created": created if created is not None else int(time.time()),
        "livemode": False,
        "type": event_type,
        "data": {"object": obj},
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
    }


def signature(body: bytes, secret: str | None = None, timestamp: int | None = None) -> str:
    secret = secret or settings.STRIPE_WEBHOOK_SECRET
    timestamp = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def post(
    client,
    endpoint,
    payload: dict | bytes,
    *,
    secret: str | None = None,
    timestamp: int | None = None,
    **headers,
):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    extra = {"HTTP_STRIPE_SIGNATURE": signature(body, secret, timestamp), **headers}
    # Inside a test transaction nothing commits: run the after-commit enqueue as a commit would.
    with TestCase.captureOnCommitCallbacks(execute=True):
        return client.post(
            f"/stripe/webhook/{endpoint.djstripe_uuid}/", body, content_type="application/json", **extra
        )


def payment_intent(payment, status: str = "succeeded", **fields) -> dict:
    return {
        "id": payment.processor_payment_id or f"pi_{uuid.uuid4().hex[:24]}",
        "object": "payment_intent",
        "amount": payment.amount,
        "currency": payment.currency,
        "status": status,
        "metadata": {"recur_payment_id": str(payment.pk), "recur_reference": payment.reference},
        "latest_charge": fields.pop("latest_charge", None),
        "last_payment_error": fields.pop("last_payment_error", None),
        **fields,
    }


def charge(payment, status: str = "succeeded", **fields) -> dict:
    return {
        "id": fields.pop("id", None) or f"ch_{uuid.uuid4().hex[:24]}",
        "object": "charge",
        "amount": payment.amount,
        "currency": payment.currency,
        "status": status,
        "paid": status == "succeeded",
        "payment_intent": payment.processor_payment_id,
        "metadata": {"recur_payment_id": str(payment.pk)},
        "outcome": fields.pop(
            "outcome", {"risk_level": "normal", "risk_score": 12, "network_status": "approved_by_network"}
        ),
        "amount_refunded": fields.pop("amount_refunded", 0),
        "refunded": fields.pop("refunded", False),
        "balance_transaction": fields.pop("balance_transaction", "txn_test"),
        **fields,
    }
