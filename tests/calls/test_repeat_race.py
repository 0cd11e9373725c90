"""Repeats that race when agents are scarce, on PostgreSQL: the caller lock makes them repeats.

(The plain race, 30 pings for one caller, is in tests/routing/test_allocation_concurrency.py.)
"""

import dataclasses
import json
import threading
import time

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from calls.models import CallRecord
from calls.ping import service as calls_services
from routing.models import Agent, Reservation, TransferNumber
from routing.services import database_now, reservation_release
from tests.conftest import ALL_STATES_KEY, DEMO_KEY, PING_URL
from tests.factories import VendorFactory, floor_build

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

TX_AGENTS = 10


@pytest.fixture
def floor(db):
    """A vendor for AZ and CA with DEMO_KEY, one for every state with ALL_STATES_KEY; three
    agents licensed for AZ, three for CA, TX_AGENTS for TX; twenty transfer numbers."""
    VendorFactory.with_key(authorized_states=["AZ", "CA"], key=DEMO_KEY)
    VendorFactory.with_key(all_states=True, key=ALL_STATES_KEY)
    return floor_build(agents={"AZ": 3, "CA": 3, "TX": TX_AGENTS}, numbers=20)


# The rounds use the vendor authorized everywhere, for TX, where there are TX_AGENTS agents.
CONTROL_TRIES = 10
PINGS_AT_ONCE = 8
# From the fourth round on, fewer TX agents are free than pings race: a repeat that took an agent
# of its own would leave a twin with none.
ROUNDS = 5


def _ping_at_once(body: dict, count: int) -> list:
    return _ping_bodies_at_once([body] * count)


def _ping_bodies_at_once(bodies: list[dict]) -> list:
    barrier = threading.Barrier(len(bodies))
    answers: list = [None] * len(bodies)

    def send(index: int) -> None:
        client = Client()
        try:
            barrier.wait(timeout=10)
            answers[index] = client.post(
                PING_URL, data=json.dumps(bodies[index]), content_type="application/json"
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(index,)) for index in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return answers


def _ping_rounds():
    for round_ in range(ROUNDS):
        phone = f"+1512555{round_:04d}"
        body = {"vendorKey": ALL_STATES_KEY, "phoneNumber": phone, "stateCode": "TX"}
        yield phone, _ping_at_once(body, PINGS_AT_ONCE)


def test_without_the_caller_lock_a_racing_repeat_is_told_no_agent_is_free(floor, monkeypatch):
    # The control: proves the race is real, so the lock is what prevents it. Eight pings for one
    # caller race for AZ's three agents; one try that shows it is enough.
    # No lock, only the clock it reads.
    monkeypatch.setattr(
        "calls.ping.service.reservation_lock_caller", lambda **caller: database_now()
    )
    # On PostgreSQL a ping first tries the one-statement path, whose own try-lock for the caller
    # sends racing twins to the transactional path: skip it, so the control has no lock at all.
    monkeypatch.setattr("calls.ping.service._reserve_in_one_statement", lambda *args: None)
    # And widen the window: each ping holds its transaction open a moment after allocating, so the
    # twins overlap every time instead of by chance (the first would otherwise often commit
    # before the others look).
    allocate = calls_services.reservation_create

    def slow_allocate(**kwargs):
        allocation = allocate(**kwargs)
        time.sleep(0.05)
        return allocation

    monkeypatch.setattr("calls.ping.service.reservation_create", slow_allocate)
    for attempt in range(CONTROL_TRIES):
        body = {"vendorKey": DEMO_KEY, "phoneNumber": f"+1480555{attempt:04d}", "stateCode": "AZ"}
        answers = _ping_at_once(body, PINGS_AT_ONCE)
        assert {answer.status_code for answer in answers} == {200}
        if not all(answer.json()["data"]["agentAvailable"] for answer in answers):
            return
        for reservation in Reservation.objects.filter(status="active"):
            reservation_release(reservation_id=reservation.pk, now=timezone.now())
    pytest.fail(f"the race never showed in {CONTROL_TRIES} tries")


def test_racing_repeats_leave_scarce_agents_alone_and_answer_at_most_the_ttl(floor):
    for phone, answers in _ping_rounds():
        assert [answer.status_code for answer in answers] == [200] * PINGS_AT_ONCE
        data = [answer.json()["data"] for answer in answers]
        assert all(item["agentAvailable"] for item in data)
        assert all(59 <= item["ttlSeconds"] <= 60 for item in data)
        reservation = Reservation.objects.get(phone_number=phone)
        assert {item["transferTarget"] for item in data} == {str(reservation.transfer_number)}
        records = CallRecord.objects.filter(phone_number=phone)
        first = records.get(outcome="reserved")
        assert first.reservation == reservation
        repeats = records.filter(outcome="repeat")
        assert repeats.count() == PINGS_AT_ONCE - 1
        assert set(repeats.values_list("repeat_of", "reservation")) == {(first.pk, reservation.pk)}

    # One agent and one number held per caller, no more.
    assert Reservation.objects.filter(status="active").count() == ROUNDS
    assert Agent.objects.exclude(held_until=None).count() == ROUNDS
    assert TransferNumber.objects.exclude(held_until=None).count() == ROUNDS


def test_one_caller_pinged_at_once_in_three_states_holds_one_agent(floor):
    # The vendor authorized everywhere names AZ, CA and TX for one caller, two pings each, all
    # at once: the first to reserve holds the caller's one agent, every other ping is its repeat.
    for round_ in range(ROUNDS):
        phone = f"+1512556{round_:04d}"
        bodies = [
            {"vendorKey": ALL_STATES_KEY, "phoneNumber": phone, "stateCode": state}
            for state in ("AZ", "CA", "TX") * 2
        ]
        answers = _ping_bodies_at_once(bodies)

        assert [answer.status_code for answer in answers] == [200] * len(bodies)
        data = [answer.json()["data"] for answer in answers]
        assert all(item["agentAvailable"] for item in data)
        reservation = Reservation.objects.get(phone_number=phone)
        assert {item["transferTarget"] for item in data} == {str(reservation.transfer_number)}
        records = CallRecord.objects.filter(phone_number=phone)
        first = records.get(outcome="reserved")
        assert first.state == reservation.state
        repeats = records.filter(outcome="repeat")
        assert repeats.count() == len(bodies) - 1
        assert set(repeats.values_list("repeat_of", "reservation")) == {(first.pk, reservation.pk)}

    assert Reservation.objects.filter(status="active").count() == ROUNDS
    assert Agent.objects.exclude(held_until=None).count() == ROUNDS
    assert TransferNumber.objects.exclude(held_until=None).count() == ROUNDS


@pytest.mark.parametrize("cap", [{"most_at_once": 1}, {"most_per_hour": 1}], ids=str)
def test_a_repeat_whose_twin_commits_just_before_its_caller_lock_is_no_cap_refusal(
    floor, monkeypatch, cap
):
    # The statement reads the database as of its start and takes the caller's lock a moment
    # later. Here the second ping's statement waits a while in between, so the first commits its
    # hold in that instant for certain: the caps (which count after their own lock) see that
    # hold, the statement's live check does not. The answer is still a repeat.
    from vendors.models import Vendor, VendorCap

    vendor = Vendor.objects.get(keys__sandbox=False, all_states=True)
    VendorCap.objects.create(vendor=vendor, **cap)
    statement = calls_services.ping_statement()
    lock = "pg_try_advisory_xact_lock("
    assert statement.positional_sql.count(lock) == 1
    late_lock = dataclasses.replace(
        statement,
        positional_sql=statement.positional_sql.replace(
            lock, f"(pg_sleep(0.5) IS NOT NULL) AND {lock}"
        ),
    )
    late = threading.local()
    monkeypatch.setattr(
        calls_services,
        "ping_statement",
        lambda: late_lock if getattr(late, "lock", False) else statement,
    )
    body = {"vendorKey": ALL_STATES_KEY, "phoneNumber": "+15125550077", "stateCode": "TX"}
    answers: dict = {}

    def second() -> None:
        late.lock = True
        try:
            answers["second"] = Client().post(
                PING_URL, data=json.dumps(body), content_type="application/json"
            )
        finally:
            connection.close()

    thread = threading.Thread(target=second)
    thread.start()
    time.sleep(0.2)  # the second ping's statement has begun, and waits
    first = Client().post(PING_URL, data=json.dumps(body), content_type="application/json")
    thread.join(timeout=30)

    assert first.json()["data"]["agentAvailable"] is True
    repeat = answers["second"].json()["data"]
    assert repeat["agentAvailable"] is True
    assert repeat["transferTarget"] == first.json()["data"]["transferTarget"]
    outcomes = CallRecord.objects.filter(phone_number=body["phoneNumber"]).values_list(
        "outcome", flat=True
    )
    assert sorted(outcomes) == ["repeat", "reserved"]
