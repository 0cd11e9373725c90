"""The shared cache (Redis in production), failing open.

Rate limits and the vendor-key cache use it on every ping, so a cache server that is down must
neither fail a ping nor slow it: an error becomes a miss, is logged, and the cache is then left
alone for CACHE_RETRY_SECONDS (per process) instead of every request waiting on a dead server.
"""

import logging
import time

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)

_skip_until = 0.0  # time.monotonic() before which this process does not try the cache


def cache_is_skipped() -> bool:
    return time.monotonic() < _skip_until


def cache_reset_backoff() -> None:
    global _skip_until
    _skip_until = 0.0


def _failed(action: str, exc: Exception) -> None:
    global _skip_until
    _skip_until = time.monotonic() + settings.CACHE_RETRY_SECONDS
    logger.warning(
        "Shared cache unavailable (%s: %s): rate limits fail open and vendor keys are read "
        "from the database for the next %s s",
        action,
        exc,
        settings.CACHE_RETRY_SECONDS,
    )


def shared_cache_get(key: str):
    if cache_is_skipped():
        return None
    try:
        return cache.get(key)
    except Exception as exc:
        _failed("get", exc)
        return None


def shared_cache_set(key: str, value, timeout: int) -> None:
    if cache_is_skipped() or timeout <= 0:
        return
    try:
        cache.set(key, value, timeout)
    except Exception as exc:
        _failed("set", exc)


def shared_cache_delete_many(keys: list[str]) -> bool:
    """False when the cache could not be reached (the entries then live until their TTL)."""
    if not keys:
        return True
    try:
        cache.delete_many(keys)
        return True
    except Exception as exc:
        _failed("delete", exc)
        return False


def shared_cache_batch(*, get: list[str], read: list[str], increment: list[str], timeout: int):
    """In one round trip on Redis: the values at `get`, the counters at `read`, and the counters
    at `increment` after adding 1 (a new counter lives `timeout` seconds).

    Returns (values, counters), counters being `read`'s then `increment`'s; None when the cache
    is unavailable.
    """
    if cache_is_skipped():
        return None
    try:
        script = _redis_batch_script()
        if script is not None:
            return _redis_batch(script, get, read, increment, timeout)
        values = [cache.get(key) for key in get]
        counters = [cache.get(key) or 0 for key in read]
        for key in increment:
            cache.add(key, 0, timeout)
            counters.append(cache.incr(key))
        return values, counters
    except Exception as exc:
        _failed("batch", exc)
        return None


def shared_cache_increment(key: str, timeout: int) -> None:
    shared_cache_batch(get=[], read=[], increment=[key], timeout=timeout)


# The batch as one Redis command: a pipeline of GETs, INCRs and EXPIREs cost several times the
# Python of one script call. Its keys may hash to different slots: one Redis, not a cluster.
_BATCH_SCRIPT = """
local reads, timeout = tonumber(ARGV[1]), tonumber(ARGV[2])
local replies = {}
for i, key in ipairs(KEYS) do
    if i <= reads then
        replies[i] = redis.call('GET', key)
    else
        replies[i] = redis.call('INCR', key)
        if replies[i] == 1 then
            redis.call('EXPIRE', key, timeout)
        end
    end
end
return replies
"""
_script_for_backend: tuple[object, object] | None = None


def _redis_batch_script():
    """The batch script on the Redis client under Django's RedisCache, or None for another
    backend.

    Django's RedisCache builds a new client object for every call (a few hundred microseconds of
    Python each), and takes two round trips to increment; one kept client and one script call
    do it all in one.
    """
    global _script_for_backend
    backend = getattr(cache, "_cache", None)
    if backend is None or not hasattr(backend, "get_client"):
        return None
    if _script_for_backend is None or _script_for_backend[0] is not backend:
        script = backend.get_client(write=True).register_script(_BATCH_SCRIPT)
        _script_for_backend = (backend, script)
    return _script_for_backend[1]


def _redis_batch(script, get, read, increment, timeout):
    keys = [cache.make_key(key) for key in [*get, *read, *increment]]
    replies = script(keys=keys, args=[len(get) + len(read), timeout])
    loads = cache._cache._serializer.loads
    values = [loads(reply) if reply is not None else None for reply in replies[: len(get)]]
    counters = [int(reply or 0) for reply in replies[len(get) :]]
    return values, counters
