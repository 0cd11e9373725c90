"""The vendor-key cache: pings need no key query, yet a revoked key or a changed vendor is seen
on the very next ping, in every server process (the cache is shared)."""

from datetime import timedelta

import pytest
import redis
from django.core.cache import cache
from django.utils import timezone

from calls.ping.service import vendor_ping
from tests.conftest import DEMO_KEY
from tests.factories import VendorFactory, floor_build
from tests.servers import redis_cache_settings
from vendors.models import Vendor, VendorKey, vendor_key_digest
from vendors.services import (
    VendorKeyInvalid,
    vendor_key_create,
    vendor_key_revoke,
    vendor_key_rotate,
)


@pytest.fixture(autouse=True)
def vendor(db):
    """Acme Leads, whose key is DEMO_KEY, authorized for AZ and CA; three agents licensed for AZ
    and five transfer numbers, for the pings that pass."""
    vendor, _ = VendorFactory.with_key(
        name="Acme Leads", authorized_states=["AZ", "CA"], key=DEMO_KEY
    )
    floor_build(agents={"AZ": 3}, numbers=5)
    return vendor


BAD_KEY = "Vendor key was not found or not formatted correctly."


def demo_key_row() -> VendorKey:
    return VendorKey.objects.get(digest=vendor_key_digest(DEMO_KEY))


def validate(ping, key: str = DEMO_KEY):
    return ping({"vendorKey": key})


def assert_bad_key(response) -> None:
    assert response.status_code == 401
    assert response.json()["data"]["message"] == BAD_KEY


def test_a_known_key_is_answered_from_the_cache_with_no_query(
    ping, shared_cache, django_assert_num_queries
):
    validate(ping)  # the first ping reads the key and fills the cache

    with django_assert_num_queries(0):
        answer = validate(ping)

    assert answer.json()["data"]["authorizedStates"] == ["AZ", "CA"]


def test_a_revoked_key_is_refused_on_the_next_ping(ping, shared_cache):
    assert validate(ping).status_code == 200

    vendor_key_revoke(vendor_key=demo_key_row())

    assert_bad_key(validate(ping))


def test_a_rotated_key_is_refused_and_its_successor_works_at_once(ping, shared_cache):
    assert validate(ping).status_code == 200

    _, new_key = vendor_key_rotate(vendor_key=demo_key_row())

    assert_bad_key(validate(ping))
    assert validate(ping, new_key).status_code == 200


def test_a_revocation_set_for_later_takes_effect_at_that_moment_from_the_cache(ping, shared_cache):
    key = demo_key_row()
    later = timezone.now() + timedelta(minutes=5)
    vendor_key_revoke(vendor_key=key, at=later)
    assert validate(ping).status_code == 200  # cached now, with its revocation time

    payload = {"vendorKey": DEMO_KEY}
    with pytest.raises(VendorKeyInvalid):
        vendor_ping(payload=payload, request_id="r", now=later + timedelta(seconds=1))


def test_a_vendor_deactivated_by_staff_is_seen_on_the_next_ping(ping, shared_cache):
    assert validate(ping).json()["data"]["vendorActive"] is True

    vendor = Vendor.objects.get(name="Acme Leads")
    vendor.is_active = False
    vendor.save()

    answer = ping({"vendorKey": DEMO_KEY, "phoneNumber": "+14801234567"})
    assert answer.status_code == 403
    assert answer.json()["data"]["message"] == "Vendor is not active."


def test_changed_authorized_states_are_seen_on_the_next_ping(ping, shared_cache):
    assert validate(ping).json()["data"]["authorizedStates"] == ["AZ", "CA"]

    vendor = Vendor.objects.get(name="Acme Leads")
    vendor.authorized_states = ["TX"]
    vendor.save()

    assert validate(ping).json()["data"]["authorizedStates"] == ["TX"]
    refused = ping({"vendorKey": DEMO_KEY, "phoneNumber": "+14801234567"})
    assert refused.json()["data"]["message"] == "Vendor is not authorized for state AZ."


def test_a_deleted_key_is_refused_on_the_next_ping(ping, shared_cache):
    assert validate(ping).status_code == 200

    demo_key_row().delete()

    assert_bad_key(validate(ping))


def test_a_new_key_works_at_once(ping, shared_cache):
    vendor = Vendor.objects.get(name="Acme Leads")
    assert_bad_key(validate(ping, "11111111-2222-4333-8444-555555555555"))

    vendor_key_create(vendor=vendor, key="11111111-2222-4333-8444-555555555555")

    assert validate(ping, "11111111-2222-4333-8444-555555555555").status_code == 200


def test_a_cached_entry_lives_no_longer_than_the_configured_bound(ping, settings, redis_server):
    settings.CACHES = redis_cache_settings(redis_server.url + "/0")
    settings.VENDOR_KEY_CACHE_SECONDS = 7
    cache.clear()
    validate(ping)

    client = redis.Redis.from_url(redis_server.url + "/0")
    (entry,) = client.keys("*vendor-key:*")
    assert 0 < client.ttl(entry) <= 7


def test_last_use_is_written_at_most_once_a_minute(ping, shared_cache):
    validate(ping)
    first_use = demo_key_row().last_used_at
    validate(ping)

    assert first_use is not None
    assert demo_key_row().last_used_at == first_use
