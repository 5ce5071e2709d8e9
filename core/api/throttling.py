"""Per-token rate limit (``RECUR_API_RATE_LIMIT`` requests a minute), counted in Redis.

A counter per token and fixed one-minute window, raised with ``INCR``: one round trip (one
script), a few bytes. DRF's ``SimpleRateThrottle`` kept a list of every request's timestamp in
the cache and read and rewrote it whole on each request (1,200 floats pickled twice per
request at the default limit), the largest single cost of an authenticated request. The authentication
counts the request in the same round trip as the address's failed guesses and the
authentication epoch (``request_counted``); the throttle only reads the count. The counter is
keyed by the secret's hash, so the request is counted before the token is looked up.
"""

import time
from dataclasses import dataclass

from django.conf import settings
from rest_framework.throttling import BaseThrottle

from core.api import guesses
from core.cache import CacheScript

WINDOW_SECONDS = 60


@dataclass(frozen=True)
class Counted:
    """What one round trip to Redis answered for an authenticated request."""

    requests: int  # this token's requests in the current window, this one included
    failed_guesses: int  # the client address's failed secret guesses in its window
    wait: int  # seconds until the window ends
    epoch: bytes | None = None  # the value of ``epoch_key``, if one was asked for


def _rate_key(token_id: str, window: int) -> str:
    return f"recur:rate:{token_id}:{window}"


# One command instead of a pipeline of five: Redis runs it atomically, and the client packs
# one command and parses one reply. ``GET`` of a missing key is ``false``, kept in the table
# and answered as a nil.
_COUNT_SCRIPT = """
local failed = redis.call('GET', KEYS[1])
local requests = redis.call('INCR', KEYS[2])
if requests == 1 then redis.call('EXPIRE', KEYS[2], ARGV[1]) end
local epoch = false
if KEYS[3] then
  redis.call('SET', KEYS[3], ARGV[2], 'NX')
  epoch = redis.call('GET', KEYS[3])
end
return {failed, requests, epoch}
"""
_count = CacheScript(_COUNT_SCRIPT)


def request_counted(request, token_id: str, *, epoch_key: str | None = None, epoch_new: str = "") -> Counted:
    """Counts the request against ``token_id`` and reads the address's failed guesses (and,
    given ``epoch_key``, that key, set to ``epoch_new`` if missing), in one round trip. The
    count is stored on the request for ``AccessTokenRateThrottle``."""
    now = time.time()
    window = int(now // WINDOW_SECONDS)
    keys = [guesses.key(request)[0], _rate_key(token_id, window)]
    if epoch_key is not None:
        keys.append(epoch_key)
    failed, requests, epoch = _count(keys=keys, args=[WINDOW_SECONDS * 2, epoch_new])
    counted = Counted(
        requests=requests,
        failed_guesses=int(failed or 0),
        wait=int(WINDOW_SECONDS - now % WINDOW_SECONDS) + 1,
        epoch=epoch,  # nil from the script when no epoch key was given
    )
    request._recur_counted = counted
    return counted


class AccessTokenRateThrottle(BaseThrottle):
    """Refuses a token's requests beyond ``RECUR_API_RATE_LIMIT`` in the current minute."""

    def allow_request(self, request, view) -> bool:
        if request.auth is None:
            return True
        counted = getattr(request, "_recur_counted", None) or request_counted(
            request, request.auth.token_hash[:32]
        )
        self._wait = counted.wait
        return counted.requests <= settings.RECUR_API_RATE_LIMIT

    def wait(self) -> int:
        return self._wait
