import pytest
from django.core.cache import cache

from tests.servers import RedisServer, redis_cache_settings


@pytest.fixture(scope="session")
def redis_server():
    server = RedisServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=["memory", "redis"])
def shared_cache(request, settings):
    """Each test runs with the local-demo memory cache and with a real Redis."""
    if request.param == "redis":
        settings.CACHES = redis_cache_settings(request.getfixturevalue("redis_server").url + "/0")
    else:
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    cache.clear()
    return request.param


@pytest.fixture
def whole_window():
    """Start a test well inside a one-minute rate window, so its counts are not split by the
    window turning over halfway (which would reset them)."""
    import time

    from vendors.ratelimit import WINDOW_SECONDS

    left = WINDOW_SECONDS - time.time() % WINDOW_SECONDS
    if left < 10:
        time.sleep(left + 0.1)
