"""Holds are decided by the database's clock, not each web machine's: two machines whose clocks
disagree by minutes never cut each other's holds short (PostgreSQL; on SQLite the database runs in
the web process, on its clock).

A machine's skewed clock is Django's `timezone.now` patched to run minutes ahead or behind; the
database's clock is the real one.
"""

import contextlib
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from calls.models import CallRecord
from calls.tasks import expire_due_reservations
from routing.models import Agent, Reservation
from tests.conftest import ALL_STATES_KEY
from tests.factories import VendorFactory, floor_build

pytestmark = pytest.mark.postgres


@pytest.fixture(autouse=True)
def floor(db):
    """A vendor for every state with ALL_STATES_KEY, three agents licensed for AZ, five
    transfer numbers."""
    VendorFactory.with_key(all_states=True, key=ALL_STATES_KEY)
    return floor_build(agents={"AZ": 3}, numbers=5)


SKEW = timedelta(minutes=5)
_true_now = timezone.now


@contextlib.contextmanager
def machine_clock(monkeypatch, skew: timedelta):
    """Requests served meanwhile run on a machine whose clock is `skew` off the database's."""
    with monkeypatch.context() as patch:
        patch.setattr(timezone, "now", lambda: _true_now() + skew)
        yield


def az_ping(phone: str, state: str = "AZ") -> dict:
    return {"vendorKey": ALL_STATES_KEY, "phoneNumber": phone, "stateCode": state}


def seconds_left_by_the_database(reservation: Reservation) -> float:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT extract(epoch FROM expires_at - statement_timestamp())"
            " FROM routing_reservation WHERE id = %s",
            [reservation.pk],
        )
        return float(cursor.fetchone()[0])


def test_a_hold_made_on_a_slow_clock_gets_its_full_ttl_and_a_fast_clock_does_not_cut_it(
    ping, monkeypatch, floor
):
    az_agents = len(floor.agents["AZ"])
    with machine_clock(monkeypatch, -SKEW):
        first = ping(az_ping("+14805550100")).json()["data"]
    held = Reservation.objects.get()

    assert first["agentAvailable"] is True
    assert 58 <= seconds_left_by_the_database(held) <= 60
    assert held.expires_at - held.created_at == timedelta(seconds=60)

    with machine_clock(monkeypatch, +SKEW):
        others = [ping(az_ping(f"+1480555020{n}")).json()["data"] for n in range(az_agents)]
        # The same caller again, in another state: a repeat with what remains of the TTL.
        repeat = ping(az_ping("+14805550100", state="CA")).json()["data"]
        expire_due_reservations()  # the sweep, on the fast machine

    # The slow machine's hold keeps one AZ agent, the fast machine gets the others.
    assert [item["agentAvailable"] for item in others] == [True] * (az_agents - 1) + [False]
    assert repeat["transferTarget"] == first["transferTarget"]
    assert 58 <= repeat["ttlSeconds"] <= 60
    held.refresh_from_db()
    assert held.status == Reservation.Status.ACTIVE
    assert CallRecord.objects.get(reservation=held, repeat_of=None).outcome == "reserved"
    assert Agent.objects.filter(pk=held.agent_id, held_until=held.expires_at).exists()


def test_a_hold_made_on_a_fast_clock_ends_when_its_ttl_runs_out_not_minutes_later(
    ping, monkeypatch
):
    with machine_clock(monkeypatch, +SKEW):
        ping(az_ping("+14805550100"))
    held = Reservation.objects.get()

    assert 58 <= seconds_left_by_the_database(held) <= 60


def test_a_call_arriving_on_a_fast_machine_is_matched_to_a_hold_made_on_a_slow_one(
    ping, carrier, monkeypatch
):
    with machine_clock(monkeypatch, -SKEW):
        first = ping(az_ping("+14805550100")).json()["data"]

    with machine_clock(monkeypatch, +SKEW):
        carrier.voice(sid="CA-skew", to=first["transferTarget"], caller="+14805550100")

    held = Reservation.objects.get()
    assert held.status == Reservation.Status.CONNECTED
    assert CallRecord.objects.get(reservation=held).outcome == "connected"


def test_staff_on_a_fast_machine_can_release_a_hold_made_on_a_slow_one(
    ping, operations_client, monkeypatch
):
    with machine_clock(monkeypatch, -SKEW):
        ping(az_ping("+14805550100"))
    held = Reservation.objects.get()

    with machine_clock(monkeypatch, +SKEW):
        operations_client.post(
            "/admin/routing/reservation/",
            {"action": "release", "_selected_action": [held.pk], "reason": "Caller hung up"},
        )

    held.refresh_from_db()
    assert held.status == Reservation.Status.RELEASED
    assert Agent.objects.filter(pk=held.agent_id, held_until=None).exists()
