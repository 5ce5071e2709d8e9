"""``Idempotency-Key`` for API writes.

The first request with a key claims it by committing an in-progress record before
doing the work, so a concurrent duplicate finds the claim, waits for the outcome and
replays it. Same key and same body within the TTL replays the stored response; the
same key with another body is refused. 5xx outcomes are forgotten, so the client
may retry with the same key.
"""

import contextlib
import hashlib
import json
import time
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, connection, models, transaction
from rest_framework import exceptions
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from core import clock
from core.models import IdempotencyRecord

HEADER = "Idempotency-Key"
METHODS = {"POST", "PATCH", "PUT", "DELETE"}
WAIT_SECONDS = 5.0


class IdempotencyConflict(exceptions.APIException):
    status_code = 409
    default_code = "idempotency_error"


class IdempotentReplay(Exception):
    def __init__(self, record: IdempotencyRecord):
        self.record = record

    def response(self) -> Response:
        response = Response(self.record.response_body, status=self.record.response_status)
        response["Idempotent-Replayed"] = "true"
        return response


def _json_value(value) -> str:
    if isinstance(value, UploadedFile):  # an upload is the same request only with the same bytes
        digest = hashlib.sha256()
        for chunk in value.chunks():
            digest.update(chunk)
        value.seek(0)
        return f"{value.name}:{value.size}:{digest.hexdigest()}"
    return str(value)


def _fingerprint(request) -> str:
    body = json.dumps(request.data, sort_keys=True, default=_json_value) if request.data else ""
    raw = f"{request.method} {request.path} {body}"
    return hashlib.sha256(raw.encode()).hexdigest()


def _relaxed_write(sql: str, params: list) -> list[tuple]:
    """Runs one statement of the record's in a transaction of its own whose commit does not
    wait for the WAL to reach the disk (a flush is 3 ms at the median and 13 ms at p99 on a
    loaded 2-core machine; a create paid three), and returns its rows.

    One round trip: ``SET LOCAL`` and the statement are sent as one query string, which the
    server runs as one implicit transaction (Django's psycopg cursors bind parameters
    client-side unless the database's OPTIONS ask for ``server_side_binding``, which ours do
    not, so the string may hold two statements). ``BEGIN``, ``SET LOCAL``, the statement and
    ``COMMIT`` were four. On an error the implicit transaction is rolled back whole and the
    connection is idle again. Inside a caller's transaction (tests, a view that is atomic),
    the statement runs in a savepoint, so an error leaves that transaction usable.

    Safe for the record's own commits: WAL is flushed in order, so once the work's transaction
    (a normal commit) is durable, the claim written before it is too; if the database crashes
    before that, the claim and the work are lost together and a retry starts afresh. Only a
    database crash in the fraction of a second after the work's commit can lose the completion,
    leaving the key "still being processed" (409) until it expires instead of replayed."""
    inside = connection.in_atomic_block
    with transaction.atomic() if inside else contextlib.nullcontext(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL synchronous_commit = off; {sql}", params)
        cursor.nextset()  # the SET's result comes first
        return cursor.fetchall() if cursor.description else []


def _column(name: str) -> models.Field:
    return IdempotencyRecord._meta.get_field(name)


def _values(record: IdempotencyRecord, names: list[str]) -> tuple[str, list]:
    """The quoted columns of ``names`` and their values as the database takes them."""
    fields = [_column(name) for name in names]
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    return columns, [field.get_db_prep_save(getattr(record, field.attname), connection) for field in fields]


INSERTED = ["organization", "key", "fingerprint", "method", "path", "state", "created_at", "expires_at"]
COMPLETED = ["state", "response_status", "response_body"]


def _insert(*, organization, key: str, fingerprint: str, request, now) -> IdempotencyRecord:
    record = IdempotencyRecord(
        organization=organization,
        key=key,
        fingerprint=fingerprint,
        method=request.method,
        path=request.path[:500],
        created_at=now,
        expires_at=now + timedelta(hours=settings.RECUR_IDEMPOTENCY_TTL_HOURS),
    )
    columns, params = _values(record, INSERTED)
    table = connection.ops.quote_name(IdempotencyRecord._meta.db_table)
    placeholders = ", ".join(["%s"] * len(params))
    [(record.pk,)] = _relaxed_write(
        f"INSERT INTO {table} ({columns}) VALUES ({placeholders}) RETURNING {connection.ops.quote_name('id')}",
        params,
    )
    record._state.adding = False
    record._state.db = connection.alias
    return record


def _complete(record: IdempotencyRecord) -> None:
    fields = [_column(name) for name in COMPLETED]
    _, params = _values(record, COMPLETED)
    assignments = ", ".join(f"{connection.ops.quote_name(field.column)} = %s" for field in fields)
    table = connection.ops.quote_name(IdempotencyRecord._meta.db_table)
    _relaxed_write(
        f"UPDATE {table} SET {assignments} WHERE {connection.ops.quote_name('id')} = %s", [*params, record.pk]
    )


def _claim(*, organization, key: str, fingerprint: str, request) -> tuple[IdempotencyRecord, bool]:
    now = clock.now()
    claim = partial(
        _insert, organization=organization, key=key, fingerprint=fingerprint, request=request, now=now
    )
    try:  # a new key, the usual case: one INSERT
        return claim(), True
    except IntegrityError:
        pass
    existing = IdempotencyRecord.objects.filter(organization=organization, key=key).first()
    if existing is not None and existing.expires_at > now:
        return existing, False
    # Expired (its key is free again), or forgotten meanwhile after a 5xx: claim it afresh.
    IdempotencyRecord.objects.filter(organization=organization, key=key, expires_at__lte=now).delete()
    try:
        return claim(), True
    except IntegrityError:
        return IdempotencyRecord.objects.get(organization=organization, key=key), False


def idempotency_begin(request) -> IdempotencyRecord | None:
    """Claim the request's key, or raise ``IdempotentReplay`` / ``IdempotencyConflict``."""
    key = request.headers.get(HEADER)
    if request.method not in METHODS or key is None:
        return None
    key = key.strip()
    if not key or len(key) > 255:
        raise exceptions.ValidationError({HEADER: ["Use a key of 1 to 255 characters."]})
    organization = request.auth.organization
    fingerprint = _fingerprint(request)
    record, claimed = _claim(organization=organization, key=key, fingerprint=fingerprint, request=request)
    if claimed:
        return record
    if record.fingerprint != fingerprint:
        raise IdempotencyConflict(
            "This Idempotency-Key was used with a different request; use a new key.",
            code="idempotency_key_reused",
        )
    deadline = time.monotonic() + WAIT_SECONDS
    while record.state != IdempotencyRecord.State.COMPLETED and time.monotonic() < deadline:
        time.sleep(0.05)
        record = IdempotencyRecord.objects.filter(pk=record.pk).first()
        if record is None:  # the first attempt failed with a 5xx and was forgotten: try again
            return idempotency_begin(request)
    if record.state != IdempotencyRecord.State.COMPLETED:
        raise IdempotencyConflict(
            "A request with this Idempotency-Key is still being processed.", code="idempotency_key_in_use"
        )
    raise IdempotentReplay(record)


def _lost_a_race(response: Response) -> bool:
    data = getattr(response, "data", None)
    return response.status_code == 409 and isinstance(data, dict) and data.get("code") == "concurrent_update"


def idempotency_finish(record: IdempotencyRecord, response: Response) -> None:
    if response.status_code >= 500 or _lost_a_race(response):
        record.delete()  # nothing was done: the client may retry with the same key
        return
    body = None
    if getattr(response, "data", None) is not None:
        body = json.loads(JSONRenderer().render(response.data))
    record.state = IdempotencyRecord.State.COMPLETED
    record.response_status = response.status_code
    record.response_body = body
    _complete(record)


def idempotency_purge_expired() -> int:
    deleted, _ = IdempotencyRecord.objects.filter(expires_at__lte=clock.now()).delete()
    return deleted
