"""Authenticated access tokens remembered per process, checked against one epoch in Redis.

Finding a token (with its organization) by hash was the largest single cost of an API
request: the ORM compiled a two-table query each time. Each process now keeps what it read,
keyed by the secret's hash, beside the value the epoch key had when it read it. Every request
reads the epoch in the Redis round trip it already makes for the rate limit
(``core.api.throttling.request_counted``); a remembered token is used only while the epoch is
unchanged and is checked for revocation and expiry as before.

Any write to a token or an organization bumps the epoch: saves and deletes through signals
(``AccountsConfig.ready``), ``QuerySet.update`` through the models' querysets. It is bumped at
once, so the writing transaction's own next request reads afresh, and again after commit,
so a process that read the row between the two (the old, committed version) drops it. Each
bump writes a new random value, never a counter, so a flushed or evicted key (set afresh by
the next request) cannot come back to a value some process remembered.

Each request gets its own instances, built from the remembered column values, so nothing a
request sets on them reaches the next one.
"""

import copy
import functools
import uuid
from dataclasses import dataclass

from django.core.cache import cache
from django.db import transaction

EPOCH_KEY = "recur:auth-epoch"
MAX_ENTRIES = 2048


@dataclass(frozen=True)
class _Entry:
    epoch: bytes
    token: tuple
    organization: tuple


_remembered: dict[str, _Entry] = {}


def epoch_cache_key() -> str:
    return cache.make_and_validate_key(EPOCH_KEY)


def epoch_new() -> str:
    return uuid.uuid4().hex


def _bump() -> None:
    # Written raw, as the rate limit's script reads and initialises it (``SET NX``).
    key = epoch_cache_key()
    cache._cache.get_client(key, write=True).set(key, epoch_new())


def epoch_bump(**_) -> None:
    """Forget every remembered token in every process (a token or an organization changed)."""
    _remembered.clear()
    _bump()
    transaction.on_commit(_bump)


def _copied(values) -> tuple:
    # Lists and dicts (scopes, settings) are copied in and out: no request shares them.
    return tuple(copy.deepcopy(v) if isinstance(v, list | dict) else v for v in values)


def _values(instance) -> tuple:
    return _copied(getattr(instance, f.attname) for f in instance._meta.concrete_fields)


@functools.cache
def _field_names(model) -> list[str]:
    return [f.attname for f in model._meta.concrete_fields]


def _instance(model, values: tuple):
    return model.from_db("default", _field_names(model), _copied(values))


def remember(token_hash: str, epoch: bytes, token) -> None:
    if len(_remembered) >= MAX_ENTRIES:
        _remembered.pop(next(iter(_remembered)))
    _remembered[token_hash] = _Entry(epoch, _values(token), _values(token.organization))


def remembered(token_hash: str, epoch: bytes | None, *, token_model, organization_model):
    """The token (with its organization) read under this epoch, as fresh instances, or None."""
    entry = _remembered.get(token_hash)
    if epoch is None or entry is None or entry.epoch != epoch:
        return None
    token = _instance(token_model, entry.token)
    token.organization = _instance(organization_model, entry.organization)
    return token


def note_last_used(token_hash: str, token) -> None:
    """Keep the remembered copy's ``last_used_at`` in step with the row."""
    entry = _remembered.get(token_hash)
    if entry is not None:
        _remembered[token_hash] = _Entry(entry.epoch, _values(token), entry.organization)
