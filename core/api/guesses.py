"""Failed guesses of secrets (access tokens, checkout client secrets), limited per client address.

Counted in Redis through the cache, in fixed one-minute windows. Once an address is over
``RECUR_TOKEN_GUESS_LIMIT`` failures in a window, every further attempt from it is a 429
with ``Retry-After`` until the window ends, right or wrong, so a guesser learns nothing.
"""

import time

from django.conf import settings
from django.core.cache import cache
from rest_framework import exceptions
from rest_framework.throttling import BaseThrottle

WINDOW_SECONDS = 60


def key(request, scope: str = "secret") -> tuple[str, int]:
    """The address's counter in the current window, and the seconds until the window ends."""
    now = time.time()
    window = int(now // WINDOW_SECONDS)
    ident = BaseThrottle().get_ident(request)  # honours NUM_PROXIES like DRF's throttles
    return f"recur:{scope}-guesses:{ident}:{window}", int(WINDOW_SECONDS - now % WINDOW_SECONDS) + 1


def guesses_check(request, *, scope: str = "secret", limit: int | None = None) -> None:
    """Raise 429 if this address has failed too often in the current window. A ``scope`` counts
    apart (license keys typed by customers must not lock a merchant's server out of the API)."""
    key_, wait = key(request, scope)
    too_many_failed(cache.get(key_) or 0, wait, limit=limit)


def too_many_failed(failed: int, wait: int, *, limit: int | None = None) -> None:
    if failed >= (settings.RECUR_TOKEN_GUESS_LIMIT if limit is None else limit):
        raise exceptions.Throttled(
            wait=wait, detail="Too many failed attempts from this address.", code="too_many_failed_attempts"
        )


def guess_failed(request, *, scope: str = "secret") -> None:
    key_, _ = key(request, scope)
    if cache.add(key_, 1, timeout=WINDOW_SECONDS * 2):
        return
    try:
        cache.incr(key_)
    except ValueError:  # expired between add and incr
        cache.add(key_, 1, timeout=WINDOW_SECONDS * 2)
