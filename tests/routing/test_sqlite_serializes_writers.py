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
from tests.factories import VendorFactory, floor_build

pytestmark = [pytest.mark.sqlite, pytest.mark.django_db(transaction=True)]

TX_AGENTS = 10


@pytest.fixture
def floor(db):
    """A vendor for every state with ALL_STATES_KEY, TX_AGENTS agents licensed for Texas and
    twice as many transfer numbers."""
    VendorFactory.with_key(all_states=True, key=ALL_STATES_KEY)
    return floor_build(agents={"TX": TX_AGENTS}, numbers=2 * TX_AGENTS)


def test_concurrent_pings_on_sqlite_all_succeed_and_never_double_book(floor):
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
    assert sum(data["agentAvailable"] for _, data in answers) == TX_AGENTS
    assert Reservation.objects.values("agent").distinct().count() == TX_AGENTS
    assert Reservation.objects.values("transfer_number").distinct().count() == TX_AGENTS
    assert CallRecord.objects.count() == count
