"""No agent and no number is ever held twice, under any number of concurrent pings.

PostgreSQL only: SQLite ignores row locks (its IMMEDIATE transactions serialize writers instead).
Every thread uses its own database connection, as separate web workers would.
"""

import json
import threading
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection, connections, transaction
from django.test import Client
from django.utils import timezone

from calls.models import CallRecord
from routing.models import Agent, Reservation
from tests.conftest import ALL_STATES_KEY, PING_URL
from tests.factories import VendorFactory, floor_build
from tests.servers import gunicorn_servers

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

TX_AGENTS = 10
# One connection per thread: 60 threads, six for each free agent, leave PostgreSQL's default
# max_connections (100) room for whatever else uses it meanwhile; the test's own connection is
# closed before they start. Over HTTP the servers cap connections.
PINGS = 60
HTTP_PINGS = 120
REPO = Path(__file__).resolve().parents[2]


def run_concurrently(count: int, work, *, database: bool = True):
    """Run work(i) in `count` threads released together; each closes its own connection.

    With `database`, each thread connects before the threads are released: the race under test
    is the transactions', and dozens of connections opened at once on a busy machine can take
    longer than the production connect timeout, so it is lengthened here.
    """
    barrier = threading.Barrier(count)
    connection.close()
    options = connections.settings["default"].setdefault("OPTIONS", {})
    production_timeout = options.get("connect_timeout")
    options["connect_timeout"] = 30

    def one(i):
        try:
            if database:
                try:
                    connection.ensure_connection()
                except Exception:
                    barrier.abort()  # the others fail at once instead of waiting for this one
                    raise
            barrier.wait()
            return work(i)
        finally:
            connections.close_all()

    try:
        with ThreadPoolExecutor(max_workers=count) as pool:
            return list(pool.map(one, range(count)))
    finally:
        if production_timeout is None:
            options.pop("connect_timeout", None)
        else:
            options["connect_timeout"] = production_timeout


@pytest.fixture
def floor(db):
    """A vendor for every state with ALL_STATES_KEY, TX_AGENTS agents licensed for Texas and
    twice as many transfer numbers."""
    VendorFactory.with_key(all_states=True, key=ALL_STATES_KEY)
    return floor_build(agents={"TX": TX_AGENTS}, numbers=2 * TX_AGENTS)


def texas_caller(i: int) -> str:
    return f"+1214555{i:04d}"


def assert_no_double_holds() -> None:
    live = Reservation.objects.filter(status="active")
    assert live.count() == live.values("agent").distinct().count()
    assert live.count() == live.values("transfer_number").distinct().count()


def test_concurrent_pings_for_n_free_agents_make_exactly_n_reservations(floor):
    def ping(i):
        body = json.dumps({"vendorKey": ALL_STATES_KEY, "phoneNumber": texas_caller(i)})
        response = Client().post(PING_URL, data=body, content_type="application/json")
        return response.status_code, response.json()["data"]

    answers = run_concurrently(PINGS, ping)

    assert {status for status, _ in answers} == {200}
    reserved = [data for _, data in answers if data["agentAvailable"]]
    assert len(reserved) == TX_AGENTS
    assert len({data["transferTarget"] for data in reserved}) == TX_AGENTS
    assert all(1 <= data["agentCount"] <= TX_AGENTS for data in reserved)
    assert Reservation.objects.count() == TX_AGENTS
    assert Reservation.objects.values("agent").distinct().count() == TX_AGENTS
    assert_no_double_holds()
    outcomes = Counter(CallRecord.objects.values_list("outcome", flat=True))
    assert outcomes == {"reserved": TX_AGENTS, "no_agent": PINGS - TX_AGENTS}


def test_without_the_row_lock_the_same_agent_is_taken_twice(floor):
    """Control: the naive read-then-write the lock replaces does double-book under this load."""
    now = timezone.now()

    def naive_reserve(i):
        with transaction.atomic():
            agent = Agent.objects.free(now).licensed_for("TX").order_by("idle_since", "id").first()
            if agent is None:
                return None
            Agent.objects.filter(pk=agent.pk).update(held_until=now + timedelta(seconds=60))
            return agent.pk

    taken = [pk for pk in run_concurrently(40, naive_reserve) if pk is not None]

    assert len(taken) > len(set(taken)), "the race did not show; the control proves nothing"


def test_concurrent_repeats_of_one_ping_reserve_one_agent(floor):
    def ping(i):
        body = json.dumps({"vendorKey": ALL_STATES_KEY, "phoneNumber": texas_caller(1)})
        response = Client().post(PING_URL, data=body, content_type="application/json")
        return response.status_code, response.json()["data"]

    answers = run_concurrently(30, ping)

    assert {status for status, _ in answers} == {200}
    assert {data["transferTarget"] for _, data in answers} == {str(floor.numbers[0].number)}
    assert Reservation.objects.count() == 1
    outcomes = Counter(CallRecord.objects.values_list("outcome", flat=True))
    assert outcomes == {"reserved": 1, "repeat": 29}
    first = CallRecord.objects.get(outcome="reserved")
    assert set(CallRecord.objects.filter(outcome="repeat").values_list("repeat_of", flat=True)) == {
        first.pk
    }


def test_the_database_refuses_a_second_live_hold_even_if_the_code_were_wrong(floor):
    from django.db import IntegrityError

    now = timezone.now()
    body = json.dumps({"vendorKey": ALL_STATES_KEY, "phoneNumber": texas_caller(1)})
    Client().post(PING_URL, data=body, content_type="application/json")
    held = Reservation.objects.get()

    with pytest.raises(IntegrityError), transaction.atomic():
        Reservation.objects.create(
            vendor=held.vendor,
            agent=held.agent,  # same agent, while the first hold is live
            transfer_number_id=held.transfer_number_id + 1,
            phone_number=texas_caller(2),
            state="TX",
            agent_count=1,
            ttl_seconds=60,
            created_at=now,
            expires_at=now + timedelta(seconds=60),
        )


def test_two_server_processes_sharing_one_database_never_double_book(floor):
    with gunicorn_servers(connection.settings_dict, threads=16) as ports:

        def ping(i):
            body = json.dumps({"vendorKey": ALL_STATES_KEY, "phoneNumber": texas_caller(i)})
            request = urllib.request.Request(
                f"http://127.0.0.1:{ports[i % 2]}{PING_URL}",
                data=body.encode(),
                headers={"Content-Type": "application/json"},
                method="POST",
            )
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())["data"]

        answers = run_concurrently(HTTP_PINGS, ping, database=False)

    assert {status for status, _ in answers} == {200}
    assert sum(data["agentAvailable"] for _, data in answers) == TX_AGENTS
    assert Reservation.objects.count() == TX_AGENTS
    assert_no_double_holds()
    assert CallRecord.objects.count() == HTTP_PINGS
