"""Caps are exact under concurrency: pings of one capped vendor racing, in threads of one process
and across two server processes, never admit one past a cap.

PostgreSQL only. The mechanism is ping_cap_refusal's advisory lock, counted after (calls
migrations 0018 and 0019). The control installs the same function without the lock, with a
pause after the counts so the race is certain rather than lucky: it admits past the cap, which
is the race the lock closes. The same pause with the lock still admits exactly the cap.
"""

import importlib
import json
import urllib.request

import pytest
from django.db import connection

from calls.models import CallRecord
from routing.models import Agent, Reservation, TransferNumber
from tests.conftest import ALL_STATES_KEY, PING_URL
from tests.factories import CallRecordFactory, ReservationFactory, VendorFactory, floor_build
from tests.routing.test_allocation_concurrency import (
    assert_no_double_holds,
    run_concurrently,
    texas_caller,
)
from tests.servers import gunicorn_servers
from vendors.models import VendorCap

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

TX_AGENTS = 20
PINGS = 16
CAP = 5
# Within the ping's statement timeout even for the last of CAP pings that take turns.
PAUSE_SECONDS = 0.05
# Without the lock nobody takes turns: a pause long enough that every ping counts before the
# first commits, however far apart the threads reach their statements on a busy machine (the
# request's Python before it runs under one interpreter lock).
CONTROL_PAUSE_SECONDS = 0.5

_function = importlib.import_module("calls.migrations.0019_ping_cap_refusal_cheaper_counts")
# The exclusive lock (caps this low are near: the shared mode never applies).
_LOCK = "        PERFORM pg_advisory_xact_lock(hashtextextended(p_lock, 0));\n"


@pytest.fixture
def vendor(db):
    vendor, _ = VendorFactory.with_key(all_states=True, key=ALL_STATES_KEY)
    floor_build(agents={"TX": TX_AGENTS}, numbers=2 * TX_AGENTS)
    return vendor


@pytest.fixture
def cap_function():
    """Install a variant of ping_cap_refusal (locked or not, with a pause after the counts);
    the real one is put back afterwards."""

    def install(*, lock: bool, pause: float) -> None:
        sql = _function.CREATE
        assert sql.count(_LOCK) == 1
        if not lock:
            sql = sql.replace(_LOCK, "        NULL;\n")
        # The pause after the counts, at the function's end.
        sql = sql.replace("END\n$$;", f"    PERFORM pg_sleep({pause});\nEND\n$$;")
        with connection.cursor() as cursor:
            cursor.execute(sql)

    yield install
    with connection.cursor() as cursor:
        cursor.execute(_function.CREATE)


def ping_all_at_once(count: int) -> list[dict]:
    from django.test import Client

    def ping(i):
        body = json.dumps({"vendorKey": ALL_STATES_KEY, "phoneNumber": texas_caller(i)})
        response = Client().post(PING_URL, data=body, content_type="application/json")
        assert response.status_code == 200
        return response.json()["data"]

    return run_concurrently(count, ping)


def admitted(answers: list[dict]) -> int:
    return sum(answer["agentAvailable"] for answer in answers)


@pytest.mark.parametrize(
    "cap", [{"most_at_once": CAP}, {"most_per_hour": CAP}, {"most_per_day": CAP}], ids=str
)
def test_pings_racing_in_threads_never_pass_a_cap(vendor, cap):
    VendorCap.objects.create(vendor=vendor, **cap)

    answers = ping_all_at_once(PINGS)

    assert admitted(answers) == CAP
    reason = {"most_at_once": "concurrency_cap", "most_per_hour": "hourly_cap"}.get(
        next(iter(cap)), "daily_cap"
    )
    assert {a["reason"] for a in answers if not a["agentAvailable"]} == {reason}
    assert Reservation.objects.count() == CAP
    assert CallRecord.objects.filter(outcome="refused").count() == PINGS - CAP
    assert_no_double_holds()


def test_a_cap_narrowed_to_the_state_is_exact_too(vendor):
    VendorCap.objects.create(vendor=vendor, state="TX", most_at_once=CAP)

    assert admitted(ping_all_at_once(PINGS)) == CAP


def test_with_a_pause_after_the_count_the_lock_still_admits_exactly_the_cap(vendor, cap_function):
    cap_function(lock=True, pause=PAUSE_SECONDS)
    VendorCap.objects.create(vendor=vendor, most_at_once=CAP)

    assert admitted(ping_all_at_once(PINGS)) == CAP


def test_control_without_the_lock_the_same_race_admits_past_the_cap(vendor, cap_function):
    # What the lock prevents: pings counting while the others' reservations are uncommitted.
    cap_function(lock=False, pause=CONTROL_PAUSE_SECONDS)
    VendorCap.objects.create(vendor=vendor, most_at_once=CAP)

    assert admitted(ping_all_at_once(PINGS)) > CAP


def test_two_server_processes_never_pass_a_cap_together(vendor):
    VendorCap.objects.create(vendor=vendor, most_at_once=CAP, most_per_hour=CAP + 2)
    with gunicorn_servers(connection.settings_dict) as ports:

        def ping(i):
            body = json.dumps({"vendorKey": ALL_STATES_KEY, "phoneNumber": texas_caller(i)})
            request = urllib.request.Request(
                f"http://127.0.0.1:{ports[i % 2]}{PING_URL}",
                data=body.encode(),
                headers={"Content-Type": "application/json"},
                method="POST",
            )
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read())["data"]

        first = run_concurrently(PINGS, ping, database=False)
        # The holds end (released, as when staff let them go): the hourly cap now binds.
        Reservation.objects.filter(status="active").update(status="released")
        second = run_concurrently(PINGS, lambda i: ping(i + PINGS), database=False)

    assert admitted(first) == CAP
    assert {a["reason"] for a in first if not a["agentAvailable"]} == {"concurrency_cap"}
    assert admitted(second) == 2
    assert {a["reason"] for a in second if not a["agentAvailable"]} == {"hourly_cap"}
    assert Reservation.objects.count() == CAP + 2


# --- Large caps: the shared mode -----------------------------------------------------------------


def max_connections() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SHOW max_connections")
        return int(cursor.fetchone()[0])


def hour_used(vendor, reservations: int) -> None:
    """The vendor's reservations this hour, as the statement counts them."""
    from django.utils import timezone

    from vendors.models import VendorReservationCount

    start = timezone.now().replace(minute=0, second=0, microsecond=0)
    VendorReservationCount.objects.update_or_create(
        vendor=vendor, state="", period="hour", starts_at=start,
        defaults={"reservations": reservations},
    )  # fmt: skip


def test_far_from_a_large_cap_pings_share_the_lock_and_are_all_admitted(vendor):
    VendorCap.objects.create(vendor=vendor, most_per_hour=10 * max_connections())

    answers = ping_all_at_once(PINGS)

    assert admitted(answers) == PINGS
    assert CallRecord.objects.filter(outcome="reserved").count() == PINGS


def test_near_a_large_cap_pings_take_turns_and_stop_exactly_at_it(vendor):
    cap = max_connections() + 50
    VendorCap.objects.create(vendor=vendor, most_per_hour=cap)
    hour_used(vendor, cap - CAP)  # within the room every connection needs: the exclusive path

    answers = ping_all_at_once(PINGS)

    assert admitted(answers) == CAP
    assert {a["reason"] for a in answers if not a["agentAvailable"]} == {"hourly_cap"}
    assert CallRecord.objects.count() == PINGS  # one record each, whichever path answered


def test_a_large_cap_already_reached_is_refused_by_the_statement_itself(vendor):
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    cap = max_connections() + 50
    VendorCap.objects.create(vendor=vendor, most_per_hour=cap)
    hour_used(vendor, cap)
    body = json.dumps({"vendorKey": ALL_STATES_KEY, "phoneNumber": texas_caller(1)})
    client = Client()
    client.post(PING_URL, data=body, content_type="application/json")  # caches the key

    with CaptureQueriesContext(connection) as queries:
        answer = client.post(
            PING_URL,
            data=json.dumps({"vendorKey": ALL_STATES_KEY, "phoneNumber": texas_caller(2)}),
            content_type="application/json",
        ).json()["data"]

    assert answer["reason"] == "hourly_cap"
    assert len(queries) == 1


def ping_one(i: int) -> dict:
    from django.test import Client

    body = json.dumps({"vendorKey": ALL_STATES_KEY, "phoneNumber": texas_caller(i)})
    return Client().post(PING_URL, data=body, content_type="application/json").json()["data"]


def test_a_large_concurrency_cap_the_agents_can_reach_admits_its_last_and_refuses_the_next(
    vendor,
):
    # Above max_connections (the shared mode), and with more agents than the cap: the holds are
    # counted, however many.
    cap = max_connections() + 3
    VendorCap.objects.create(vendor=vendor, most_at_once=cap)
    holds = ReservationFactory.create_batch(cap - 1, vendor=vendor)
    # Their agents and numbers held, as a ping holds them.
    expires = holds[0].expires_at
    Agent.objects.filter(reservations__in=holds).update(held_until=expires)
    TransferNumber.objects.filter(reservations__in=holds).update(held_until=expires)

    assert ping_one(1)["agentAvailable"] is True  # the last
    refusal = ping_one(2)

    assert refusal["agentAvailable"] is False and refusal["reason"] == "concurrency_cap"
    assert Reservation.objects.filter(vendor=vendor, status="active").count() == cap


def test_calls_in_progress_reach_a_large_concurrency_cap_with_fewer_agents_than_the_cap(vendor):
    # Fewer agents than the cap, so the holds alone could never reach it: the calls do.
    cap = max_connections() + 3
    VendorCap.objects.create(vendor=vendor, most_at_once=cap)
    CallRecordFactory.create_batch(cap - 1, vendor=vendor, outcome="connected")

    assert ping_one(1)["agentAvailable"] is True
    assert ping_one(2)["reason"] == "concurrency_cap"
