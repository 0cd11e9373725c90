"""Rate limits on pings: per vendor key, and on failed keys per client address (key guessing).

Fixed one-minute windows counted in the shared cache, so every server process counts together.
When the cache is unavailable the limits fail open: pings are answered, and the log says so.
"""

import time

from django.conf import settings

from config.errors import MESSAGE_TOO_MANY, ApplicationError
from config.sharedcache import shared_cache_counters, shared_cache_increment

WINDOW_SECONDS = 60


class RateLimited(ApplicationError):
    status = 429
    message = MESSAGE_TOO_MANY

    def __init__(self, *, retry_after: int):
        super().__init__()
        self.headers = {"Retry-After": str(retry_after)}


def _window(now: float) -> tuple[int, int]:
    """The current window's number and the whole seconds until it ends (at least 1)."""
    window = int(now // WINDOW_SECONDS)
    return window, max(1, int((window + 1) * WINDOW_SECONDS - now + 0.999))


def _client_failures_key(client: str, window: int) -> str:
    return f"ratelimit:key-failures:{client}:{window}"


def _key_uses_key(key_digest: str, window: int) -> str:
    return f"ratelimit:key:{key_digest}:{window}"


def ratelimit_admit(*, client: str | None, key_digest: str | None) -> int | None:
    """Count this request against its key; refuse a client that has failed too many keys.

    Runs before the key is looked up. Returns the key's count in this window (None if there is no
    well-formed key, or the cache is unavailable), for `ratelimit_check_key` once the vendor is
    known. Raises RateLimited for a client over its failure limit.
    """
    now = time.time()
    window, retry_after = _window(now)
    read = [_client_failures_key(client, window)] if client else []
    increment = [_key_uses_key(key_digest, window)] if key_digest else []
    if not read and not increment:
        return None
    counts = shared_cache_counters(read=read, increment=increment, timeout=WINDOW_SECONDS + 5)
    if counts is None:
        return None
    if client and counts[0] >= settings.PING_KEY_FAILURES_PER_MINUTE:
        raise RateLimited(retry_after=retry_after)
    return counts[-1] if key_digest else None


def ratelimit_record_key_failure(*, client: str | None) -> None:
    if client:
        window, _ = _window(time.time())
        shared_cache_increment(_client_failures_key(client, window), WINDOW_SECONDS + 5)


def ratelimit_check_key(*, count: int | None, limit_per_minute: int | None) -> None:
    """Refuse a key whose count in this window is over its vendor's limit (or the default)."""
    if count is None:
        return
    limit = settings.PING_RATE_LIMIT_PER_MINUTE if limit_per_minute is None else limit_per_minute
    if count > limit:
        raise RateLimited(retry_after=_window(time.time())[1])
