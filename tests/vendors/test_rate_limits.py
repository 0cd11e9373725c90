"""Rate limits: per vendor key (the vendor's own limit or the default), and on clients that send
bad keys. Counted in the shared cache: the local memory cache and a real Redis alike."""

import logging
import socket
import threading
import time

import pytest
import redis
from django.core.cache import cache
from django.db import connections

from calls.models import CallRecord
from config import sharedcache
from tests.conftest import DEMO_KEY
from tests.factories import VendorFactory, floor_build
from tests.servers import closed_port, redis_cache_settings
from vendors import services
from vendors.models import Vendor

pytestmark = pytest.mark.usefixtures("whole_window")


@pytest.fixture(autouse=True)
def vendor(db):
    """Acme Leads, whose key is DEMO_KEY, authorized for AZ and CA; three agents licensed for AZ
    and five transfer numbers, for the pings that pass."""
    vendor, _ = VendorFactory.with_key(
        name="Acme Leads", authorized_states=["AZ", "CA"], key=DEMO_KEY
    )
    floor_build(agents={"AZ": 3}, numbers=5)
    return vendor


TOO_MANY = "Too many requests."
UNKNOWN_KEY = "00000000-0000-4000-8000-000000000000"


def a_ping(number: int = 0) -> dict:
    return {"vendorKey": DEMO_KEY, "phoneNumber": f"+1480555{number:04d}", "stateCode": "AZ"}


def assert_too_many(response) -> None:
    assert response.status_code == 429
    assert response.json() == {
        "status": 429,
        "data": {"message": TOO_MANY, "requestId": response["X-Request-ID"]},
    }
    assert 1 <= int(response["Retry-After"]) <= 60


def test_it_answers_429_with_retry_after_past_the_vendors_own_limit(ping, shared_cache):
    Vendor.objects.filter(name="Acme Leads").update(rate_limit_per_minute=2)
    cache.clear()  # update() sends no signal; the test starts from an empty cache anyway

    assert ping(a_ping(1)).status_code == 200
    assert ping(a_ping(2)).status_code == 200
    refused = ping(a_ping(3))

    assert_too_many(refused)
    # A refused ping is not a ping that passed the checks: no call record.
    assert CallRecord.objects.count() == 2


def test_a_vendor_without_its_own_limit_gets_the_default(ping, shared_cache, settings):
    settings.PING_RATE_LIMIT_PER_MINUTE = 3

    statuses = [ping(a_ping(number)).status_code for number in range(4)]

    assert statuses == [200, 200, 200, 429]


def test_key_validations_count_against_the_key_too(ping, shared_cache, settings):
    settings.PING_RATE_LIMIT_PER_MINUTE = 1

    assert ping({"vendorKey": DEMO_KEY}).status_code == 200
    assert_too_many(ping({"vendorKey": DEMO_KEY}))


def test_one_keys_limit_does_not_touch_another_vendors_key(ping, shared_cache, settings):
    settings.PING_RATE_LIMIT_PER_MINUTE = 1
    assert ping({"vendorKey": DEMO_KEY}).status_code == 200
    assert ping({"vendorKey": DEMO_KEY}).status_code == 429

    _, other_key = VendorFactory.with_key(name="Other Leads")
    other = ping({"vendorKey": other_key})

    assert other.status_code == 200


def test_a_client_guessing_keys_gets_429_for_its_next_unknown_key(ping, shared_cache, settings):
    settings.PING_KEY_FAILURES_PER_MINUTE = 3
    guesses = [ping({"vendorKey": UNKNOWN_KEY}).status_code for _ in range(3)]

    assert guesses == [401, 401, 401]
    assert_too_many(ping({"vendorKey": "not-a-key"}))
    assert_too_many(ping({"vendorKey": "00000000-0000-4000-8000-000000000001"}))


def test_a_valid_key_is_admitted_from_an_address_past_the_guessing_limit(
    ping, shared_cache, settings
):
    # The guessing limit refuses keys that do not exist, never a vendor's own: a vendor may
    # share its address (a NAT, a proxy) with whoever guesses.
    settings.PING_KEY_FAILURES_PER_MINUTE = 3
    for _ in range(5):
        ping({"vendorKey": UNKNOWN_KEY})
    assert_too_many(ping({"vendorKey": UNKNOWN_KEY}))

    validation = ping({"vendorKey": DEMO_KEY})
    reserved = ping(a_ping(1))

    assert validation.status_code == 200
    assert validation.json()["data"]["vendorActive"] is True
    assert reserved.status_code == 200
    assert reserved.json()["data"]["agentAvailable"] is True


def test_a_vendor_mid_rotation_sending_its_revoked_key_is_not_locked_out(ping, shared_cache):
    # The default limit (PING_KEY_FAILURES_PER_MINUTE = 20) and more revoked pings than that.
    vendor = Vendor.objects.get(name="Acme Leads")
    old_key, old_plain = services.vendor_key_create(vendor=vendor, label="before rotation")
    services.vendor_key_revoke(vendor_key=old_key)

    revoked = [ping({"vendorKey": old_plain}, REMOTE_ADDR="203.0.113.5") for _ in range(25)]
    validation = ping({"vendorKey": DEMO_KEY}, REMOTE_ADDR="203.0.113.5")
    reserved = ping(a_ping(1), REMOTE_ADDR="203.0.113.5")
    unknown = ping({"vendorKey": UNKNOWN_KEY}, REMOTE_ADDR="203.0.113.5")

    # A revoked key is still refused, as before, and counts for nothing toward the limit.
    assert {answer.status_code for answer in revoked} == {401}
    assert revoked[-1].json()["data"]["message"] == services.MESSAGE_BAD_KEY
    assert validation.status_code == 200
    assert reserved.status_code == 200
    assert reserved.json()["data"]["agentAvailable"] is True
    assert unknown.status_code == 401


def test_good_pings_in_flight_together_at_a_cache_miss_are_not_taken_for_guesses(
    shared_cache, settings, monkeypatch, transactional_db
):
    # A vendor's burst at the moment its cached key has expired: every ping looks the key up.
    # Counting them as failures until the lookup says otherwise would refuse the burst.
    settings.PING_KEY_FAILURES_PER_MINUTE = 2
    pings = 5
    all_pings_in_flight = threading.Barrier(pings)
    look_up = services._admitted_for_digest

    def look_up_once_every_ping_is_in_flight(*args, **kwargs):
        all_pings_in_flight.wait(timeout=5)
        return look_up(*args, **kwargs)

    monkeypatch.setattr(services, "_admitted_for_digest", look_up_once_every_ping_is_in_flight)
    admitted, refused = [], []

    def admit() -> None:
        try:
            key = services.vendor_key_admit(key=DEMO_KEY, client="203.0.113.7")
            admitted.append(key.vendor.name)
        except Exception as refusal:
            refused.append(refusal)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=admit) for _ in range(pings)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert refused == []
    assert admitted == ["Acme Leads"] * pings


def test_another_client_address_is_not_slowed_by_a_guessers_failures(ping, shared_cache, settings):
    settings.PING_KEY_FAILURES_PER_MINUTE = 2
    for _ in range(2):
        ping({"vendorKey": UNKNOWN_KEY}, REMOTE_ADDR="203.0.113.9")
    assert ping({"vendorKey": UNKNOWN_KEY}, REMOTE_ADDR="203.0.113.9").status_code == 429

    answer = ping({"vendorKey": UNKNOWN_KEY}, REMOTE_ADDR="198.51.100.7")

    assert answer.status_code == 401


def test_a_forged_forwarded_for_header_does_not_dodge_the_guessing_limit(
    ping, shared_cache, settings
):
    settings.PING_KEY_FAILURES_PER_MINUTE = 2
    for number in range(2):
        ping({"vendorKey": UNKNOWN_KEY}, HTTP_X_FORWARDED_FOR=f"192.0.2.{number}")

    answer = ping({"vendorKey": UNKNOWN_KEY}, HTTP_X_FORWARDED_FOR="192.0.2.200")

    assert_too_many(answer)


def test_behind_a_trusted_proxy_the_address_it_forwarded_is_limited(ping, shared_cache, settings):
    settings.PING_KEY_FAILURES_PER_MINUTE = 2
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    # The proxy appends the address it saw; what the client wrote before it is not trusted.
    for forged in ("10.0.0.1", "10.0.0.2"):
        ping({"vendorKey": UNKNOWN_KEY}, HTTP_X_FORWARDED_FOR=f"{forged}, 192.0.2.9")

    guesser = ping({"vendorKey": UNKNOWN_KEY}, HTTP_X_FORWARDED_FOR="10.0.0.3,192.0.2.9")
    neighbour = ping({"vendorKey": UNKNOWN_KEY}, HTTP_X_FORWARDED_FOR="192.0.2.9, 192.0.2.10")

    assert_too_many(guesser)
    assert neighbour.status_code == 401


def test_the_counters_live_in_redis_where_every_server_process_sees_them(
    ping, settings, redis_server
):
    settings.CACHES = redis_cache_settings(redis_server.url + "/0")
    cache.clear()
    ping({"vendorKey": DEMO_KEY})
    ping({"vendorKey": DEMO_KEY})

    # A second, independent client: what another server process would read.
    keys = redis.Redis.from_url(redis_server.url + "/0").keys("*ratelimit:key:*")
    assert len(keys) == 1
    assert int(redis.Redis.from_url(redis_server.url + "/0").get(keys[0])) == 2


def test_with_the_cache_unreachable_pings_are_answered_and_the_log_says_so(ping, settings, caplog):
    settings.CACHES = redis_cache_settings(f"redis://127.0.0.1:{closed_port()}/0")
    settings.PING_RATE_LIMIT_PER_MINUTE = 1

    with caplog.at_level(logging.WARNING, logger="config.sharedcache"):
        answers = [ping(a_ping(number)) for number in range(3)]

    assert [answer.status_code for answer in answers] == [200, 200, 200]
    assert [answer.json()["data"]["agentAvailable"] for answer in answers] == [True] * 3
    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    # One warning, then the cache is left alone for CACHE_RETRY_SECONDS instead of being retried
    # (and waited on) by every request.
    assert len(warnings) == 1
    assert "rate limits fail open" in warnings[0].getMessage()
    assert sharedcache.cache_is_skipped()


def test_an_unresponsive_cache_does_not_hold_a_ping_past_its_socket_timeout(ping, settings):
    # A listener that accepts and never answers: the worst case, worse than a refused connection.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    try:
        settings.CACHES = redis_cache_settings(f"redis://127.0.0.1:{port}/0", timeout_ms=200)
        started = time.monotonic()
        first = ping(a_ping(1))
        first_took = time.monotonic() - started
        started = time.monotonic()
        second = ping(a_ping(2))
        second_took = time.monotonic() - started
    finally:
        listener.close()

    assert (first.status_code, second.status_code) == (200, 200)
    assert first_took < 1.5  # one socket timeout, not one per cache call
    assert second_took < 0.5  # the cache is skipped while it is down


def test_after_the_backoff_the_cache_is_used_again(ping, settings, redis_server):
    settings.CACHES = redis_cache_settings(f"redis://127.0.0.1:{closed_port()}/0")
    settings.PING_RATE_LIMIT_PER_MINUTE = 1
    assert ping(a_ping(1)).status_code == 200
    assert sharedcache.cache_is_skipped()

    settings.CACHES = redis_cache_settings(redis_server.url + "/0")
    cache.clear()
    sharedcache.cache_reset_backoff()  # as if CACHE_RETRY_SECONDS had passed

    assert ping(a_ping(2)).status_code == 200
    assert ping(a_ping(3)).status_code == 429


def test_the_vendor_guide_states_both_limits_with_the_default_numbers():
    from django.conf import settings

    guide = (settings.BASE_DIR / "docs" / "vendor-guide.md").read_text(encoding="utf-8")

    assert f"{settings.PING_RATE_LIMIT_PER_MINUTE} requests a minute per vendor key" in guide
    assert f"{settings.PING_KEY_FAILURES_PER_MINUTE} keys that do not exist" in guide
    assert "A revoked key is answered 401 and does not count" in guide
