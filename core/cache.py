"""Django's Redis cache, with one client object per connection pool.

Django's ``RedisCacheClient.get_client`` builds a new ``redis.Redis`` around the pool on every
cache call; its constructor was a measurable part of every API request (the rate limit's
pipeline alone). A ``redis.Redis`` is safe to share between threads, and its pool already
follows forks (it checks the process id), so one per pool is enough.
"""

from collections.abc import Sequence

from django.core.cache import cache
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient as DjangoRedisCacheClient


class RedisCacheClient(DjangoRedisCacheClient):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, object] = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client


class RedisCache(DjangoRedisCache):
    def __init__(self, server, params) -> None:
        super().__init__(server, params)
        self._class = RedisCacheClient


class CacheScript:
    """A Lua script run atomically on the default cache's Redis, in one round trip, through
    the cache's own client (same pool). Django's cache API has no scripts. Keys are given as
    the cache API names them and prefixed as it does (``make_and_validate_key``), so the
    script's keys are the ones ``cache.get``/``cache.delete`` see. Sent by its SHA; redis-py
    loads it again if Redis lost it (a restart, ``SCRIPT FLUSH``)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self._script = None

    def __call__(self, *, keys: Sequence[str], args: Sequence = ()):
        keys = [cache.make_and_validate_key(key) for key in keys]
        client = cache._cache.get_client(keys[0], write=True)
        if self._script is None:
            self._script = client.register_script(self.source)
        return self._script(keys=keys, args=list(args), client=client)
