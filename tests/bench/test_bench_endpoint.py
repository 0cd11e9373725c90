"""The benchmark's endpoints exist only when BENCH_ENDPOINTS is on."""

import importlib
from contextlib import contextmanager

import pytest
from django.test import override_settings
from django.urls import clear_url_caches

import config.urls
from calls.models import CallRecord
from routing.models import Reservation
from tests.conftest import AZ_PING
from tests.factories import VendorFactory, floor_build

NOOP_URL = "/functions/v1/bench-noop"
ROUND_TRIPS_URL = "/functions/v1/bench-round-trips"


@contextmanager
def bench_endpoints_routed():
    try:
        with override_settings(BENCH_ENDPOINTS=True):
            importlib.reload(config.urls)
            clear_url_caches()
            yield
    finally:
        importlib.reload(config.urls)
        clear_url_caches()


@pytest.mark.parametrize("url", [NOOP_URL, ROUND_TRIPS_URL])
def test_the_bench_endpoints_are_not_routed_by_default(api, url):
    response = api.post(url, data="{}", content_type="application/json")

    assert response.status_code == 404
    assert response.json()["data"]["message"] == "Not found."


def test_with_bench_endpoints_on_it_answers_in_the_envelope_without_the_database(api):
    # No `db` fixture: pytest-django refuses any database access in this test.
    with bench_endpoints_routed():
        response = api.post(NOOP_URL, data="{}", content_type="application/json")

    assert response.status_code == 200
    assert response.json() == {"status": 200, "data": {"requestId": response["X-Request-ID"]}}


def test_the_round_trips_endpoint_checks_the_key_as_a_ping_does_and_reserves_nothing(demo, ping):
    with bench_endpoints_routed():
        answered = ping.client.post(ROUND_TRIPS_URL, data=AZ_PING, format="json")
        refused = ping.client.post(
            ROUND_TRIPS_URL,
            data={**AZ_PING, "vendorKey": AZ_PING["vendorKey"][::-1]},
            format="json",
        )

    assert answered.status_code == 200
    assert answered.json() == {"status": 200, "data": {"requestId": answered["X-Request-ID"]}}
    assert refused.status_code == 401
    assert refused.json()["data"]["message"] == (
        "Vendor key was not found or not formatted correctly."
    )
    assert not Reservation.objects.exists()
    assert not CallRecord.objects.exists()
    # The next real ping still finds its agent free.
    assert ping(AZ_PING).json()["data"]["agentAvailable"] is True


def test_the_round_trips_endpoint_counts_against_the_keys_rate_limit(demo, ping, settings):
    settings.PING_RATE_LIMIT_PER_MINUTE = 1
    with bench_endpoints_routed():
        first = ping.client.post(ROUND_TRIPS_URL, data=AZ_PING, format="json")
        second = ping.client.post(ROUND_TRIPS_URL, data=AZ_PING, format="json")

    assert first.status_code == 200
    assert second.status_code == 429
    assert second.json()["data"]["message"] == "Too many requests."


ORM_PING_URL = "/functions/v1/bench-orm-ping"


def test_the_orm_ping_reserves_and_records_as_a_ping_does(db, ping):
    vendor, key = VendorFactory.with_key(authorized_states=["AZ"])
    floor = floor_build(agents={"AZ": 2}, numbers=2)
    body = {"vendorKey": key, "phoneNumber": "+14801234567", "lead_id": "L-1"}
    with bench_endpoints_routed():
        first = ping.client.post(ORM_PING_URL, data=body, format="json")
        repeat = ping.client.post(ORM_PING_URL, data=body, format="json")

    assert first.status_code == 200
    data = first.json()["data"]
    assert data["agentAvailable"] is True
    assert data["transferTarget"] == str(floor.numbers[0].number)
    assert (data["ttlSeconds"], data["agentCount"]) == (60, 2)
    assert repeat.json()["data"]["transferTarget"] == data["transferTarget"]
    records = list(CallRecord.objects.order_by("id").values_list("outcome", "tracking"))
    assert records == [("reserved", {"lead_id": "L-1"}), ("repeat", {"lead_id": "L-1"})]
    assert Reservation.objects.get().vendor == vendor
