"""The benchmark's no-database endpoint exists only when BENCH_ENDPOINTS is on."""

import importlib

from django.test import override_settings
from django.urls import clear_url_caches

import config.urls


def test_the_bench_endpoint_is_not_routed_by_default(api):
    response = api.post("/functions/v1/bench-noop", data="{}", content_type="application/json")

    assert response.status_code == 404
    assert response.json()["data"]["message"] == "Not found."


def test_with_bench_endpoints_on_it_answers_in_the_envelope_without_the_database(api):
    # No `db` fixture: pytest-django refuses any database access in this test.
    try:
        with override_settings(BENCH_ENDPOINTS=True):
            importlib.reload(config.urls)
            clear_url_caches()
            response = api.post(
                "/functions/v1/bench-noop", data="{}", content_type="application/json"
            )
    finally:
        importlib.reload(config.urls)
        clear_url_caches()

    assert response.status_code == 200
    assert response.json() == {"status": 200, "data": {"requestId": response["X-Request-ID"]}}
