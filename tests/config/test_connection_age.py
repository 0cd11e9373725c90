"""Persistent connections opened together do not all end together: each ends after a random part
of CONN_MAX_AGE, between half of it and all of it (config/postgresql/base.py). A server's
threads connect at its start; with one age they would all reconnect at the same moment, every
CONN_MAX_AGE, and every ping in flight would wait for new backends at once."""

import time

import pytest
from django.db import connections

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def lifetimes(max_age, count: int = 8) -> list[float | None]:
    """Seconds from each of `count` new connections' start to the moment Django will close it."""
    seconds = []
    for _ in range(count):
        wrapper = connections.create_connection("default")
        wrapper.settings_dict = {**wrapper.settings_dict, "CONN_MAX_AGE": max_age}
        opened = time.monotonic()
        wrapper.connect()
        try:
            seconds.append(None if wrapper.close_at is None else wrapper.close_at - opened)
        finally:
            wrapper.close()
    return seconds


def test_connections_opened_together_end_at_different_moments_within_their_age():
    ages = lifetimes(60)
    assert all(30 - 0.5 <= age <= 60 + 0.5 for age in ages), ages
    # Eight draws from 30 seconds: all within 5 s of each other would be a 1-in-10^5 chance.
    assert max(ages) - min(ages) > 5, ages


def test_a_connection_per_request_and_an_unlimited_one_are_left_as_django_makes_them():
    assert all(abs(age) < 0.5 for age in lifetimes(0, count=2))  # closed at the request's end
    assert lifetimes(None, count=2) == [None, None]  # never closed for its age
