"""On the embedded SQLite default, concurrent pings queue instead of failing with "locked"."""

import json
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, connections
from django.test import Client

from calls.models import CallRecord
from routing.models import Reservation
from tests.conftest import ALL_STATES_KEY, PING_URL

pytestmark = [pytest.mark.sqlite, pytest.mark.django_db(transaction=True)]


def test_concurrent_pings_on_sqlite_all_succeed_and_never_double_book(demo):
    count = 40
    barrier = threading.Barrier(count)
    connection.close()

    def ping(i):
        try:
            barrier.wait()
            body = json.dumps({"vendorKey": ALL_STATES_KEY, "phoneNumber": f"+1214555{i:04d}"})
            response = Client().post(PING_URL, data=body, content_type="application/json")
            return response.status_code, response.json()["data"]
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=count) as pool:
        answers = list(pool.map(ping, range(count)))

    assert Counter(status for status, _ in answers) == {200: count}
    assert sum(data["agentAvailable"] for _, data in answers) == 10  # seed_demo's Texas agents
    assert Reservation.objects.values("agent").distinct().count() == 10
    assert Reservation.objects.values("transfer_number").distinct().count() == 10
    assert CallRecord.objects.count() == count
