"""One task for many prompts: a burst of commits that each want a worker to look at the
table makes a few task runs, not one per commit.

The leading edge enqueues at once unless the cache says one is queued and not started yet
(the task calls ``debounce_started`` when it starts, so work committed from then on prompts a
new run). That flag alone can lie: a lost message, or a task that cleared the flag in another
cache (another Redis database or key prefix), leaves it set for its whole window, and the
prompts it swallows would wait for the sweeper. So a swallowed prompt also schedules one
trailing run a window later (at most one per window, on a key of its own that only expires):
whatever the flag says, work committed under it is picked up within about one window.
Both flags are tried in one script, one round trip (every API write that records an event
prompts after its commit).
"""

import contextlib
import logging

from celery import Task
from django.core.cache import cache

from core.cache import CacheScript

logger = logging.getLogger("recur.debounce")

# The leading flag, else the trailing one; stored as ``cache.add(key, 1)`` stores them.
_EDGE = CacheScript(
    """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 'now' end
if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[1]) then return 'trailing' end
return 'queued'
"""
)


def debounce_prompt(*, key: str, task: Task, window: int) -> str:
    """Enqueue ``task`` (no arguments) now, or a window from now, or neither; returns which
    ("now", "trailing", "queued"). A cache error enqueues now: a task too many is harmless."""
    try:
        edge = _EDGE(keys=[key, f"{key}:trailing"], args=[window]).decode()
        if edge == "queued":
            return edge
    except Exception:
        logger.warning("debounce %s: the cache is unavailable; enqueuing", key, exc_info=True)
        edge = "now"
    if edge == "now":
        task.delay()
    else:
        task.apply_async(countdown=window)
    return edge


def debounce_started(*, key: str) -> None:
    """The task started: prompts from now on enqueue a new run."""
    with contextlib.suppress(Exception):
        cache.delete(key)
