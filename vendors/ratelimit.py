"""Rate limits on pings: per vendor key, and on keys that do not exist per client address (key
guessing; a revoked key is not a guess, and a valid key is never refused by it).

Fixed one-minute windows counted in the shared cache, so every server process counts together.
When the cache is unavailable the limits fail open: pings are answered, and the log says so.
"""

import time

from django.conf import settings

from config.errors import MESSAGE_TOO_MANY, ApplicationError
from config.sharedcache import shared_cache_increment

WINDOW_SECONDS = 60
COUNTER_SECONDS = WINDOW_SECONDS + 5  # a counter outlives its window a little, never by much


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


def ratelimit_counters(*, client: str | None, key_digest: str | None) -> tuple[list, list]:
    """The counters a request reads (its client's failures) and increments (its key's uses)."""
    window, _ = _window(time.time())
    read = [_client_failures_key(client, window)] if client else []
    increment = [_key_uses_key(key_digest, window)] if key_digest else []
    return read, increment


def ratelimit_check_client(*, failures: int | None) -> None:
    """Refuse a key that does not exist from a client that sent too many such keys this minute."""
    if failures is not None and failures >= settings.PING_KEY_FAILURES_PER_MINUTE:
        raise RateLimited(retry_after=_window(time.time())[1])


def ratelimit_record_key_failure(*, client: str | None) -> None:
    if client:
        window, _ = _window(time.time())
        shared_cache_increment(_client_failures_key(client, window), COUNTER_SECONDS)


def ratelimit_check_key(*, count: int | None, limit_per_minute: int | None) -> None:
    """Refuse a key whose count in this window is over its vendor's limit (or the default)."""
    if count is None:
        return
    limit = settings.PING_RATE_LIMIT_PER_MINUTE if limit_per_minute is None else limit_per_minute
    if count > limit:
        raise RateLimited(retry_after=_window(time.time())[1])
