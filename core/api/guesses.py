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


def key(request) -> tuple[str, int]:
    """The address's counter in the current window, and the seconds until the window ends."""
    now = time.time()
    window = int(now // WINDOW_SECONDS)
    ident = BaseThrottle().get_ident(request)  # honours NUM_PROXIES like DRF's throttles
    return f"recur:secret-guesses:{ident}:{window}", int(WINDOW_SECONDS - now % WINDOW_SECONDS) + 1


def guesses_check(request) -> None:
    """Raise 429 if this address has failed too often in the current window."""
    key_, wait = key(request)
    too_many_failed(cache.get(key_) or 0, wait)


def too_many_failed(failed: int, wait: int) -> None:
    if failed >= settings.RECUR_TOKEN_GUESS_LIMIT:
        raise exceptions.Throttled(
            wait=wait, detail="Too many failed attempts from this address.", code="too_many_failed_attempts"
        )


def guess_failed(request) -> None:
    key_, _ = key(request)
    if cache.add(key_, 1, timeout=WINDOW_SECONDS * 2):
        return
    try:
        cache.incr(key_)
    except ValueError:  # expired between add and incr
        cache.add(key_, 1, timeout=WINDOW_SECONDS * 2)
