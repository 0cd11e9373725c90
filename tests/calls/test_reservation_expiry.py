"""Expiry as services, on a fake clock: what the tasks and the sweep change, and what they don't."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from calls.lifecycle import Expiry, call_record_expire, call_records_expire_due
from calls.models import CallRecord
from calls.ping.service import vendor_ping
from routing.models import Agent, Reservation, TransferNumber
from routing.services import reservation_release
from tests.conftest import DEMO_KEY
from tests.factories import VendorFactory, floor_build

pytestmark = pytest.mark.django_db

TTL = timedelta(seconds=60)


def _ping(now, phone="+14801234567"):
    payload = {"vendorKey": DEMO_KEY, "phoneNumber": phone, "stateCode": "AZ"}
    return vendor_ping(payload=payload, request_id=str(uuid.uuid4()), now=now)


@pytest.fixture
def floor(db):
    """A vendor for AZ whose key is DEMO_KEY, three agents licensed for AZ, five numbers."""
    VendorFactory.with_key(authorized_states=["AZ"], key=DEMO_KEY)
    return floor_build(agents={"AZ": 3}, numbers=5)


@pytest.fixture
def start(floor):
    return timezone.now()


def test_it_expires_a_reservation_and_its_call_record_once_the_ttl_passes(start):
    _ping(start)
    reservation = Reservation.objects.get()

    expiry = call_record_expire(reservation_id=reservation.pk, now=start + TTL)

    assert expiry == Expiry(reservations=1, call_records=1)
    reservation.refresh_from_db()
    assert reservation.status == "expired"
    assert reservation.ended_at == start + TTL
    assert CallRecord.objects.get().outcome == "expired"


def test_it_leaves_a_reservation_alone_before_its_ttl(start):
    _ping(start)
    reservation = Reservation.objects.get()

    assert call_record_expire(reservation_id=reservation.pk, now=start + TTL / 2) == Expiry(0, 0)
    assert call_records_expire_due(now=start + TTL / 2) == Expiry(0, 0)

    reservation.refresh_from_db()
    assert reservation.status == "active"
    assert reservation.ended_at is None
    assert CallRecord.objects.get().outcome == "reserved"


def test_it_does_nothing_for_a_reservation_that_does_not_exist(start):
    assert call_record_expire(reservation_id=999_999, now=start) == Expiry(0, 0)


def test_the_sweep_expires_every_due_reservation_and_only_those(start):
    _ping(start, phone="+14801234567")
    _ping(start + timedelta(seconds=30), phone="+14805550100")

    expiry = call_records_expire_due(now=start + TTL)

    assert expiry == Expiry(reservations=1, call_records=1)
    assert dict(Reservation.objects.values_list("phone_number", "status")) == {
        "+14801234567": "expired",
        "+14805550100": "active",
    }
    assert dict(CallRecord.objects.values_list("phone_number", "outcome")) == {
        "+14801234567": "expired",
        "+14805550100": "reserved",
    }


def test_a_repeat_keeps_its_outcome_when_the_reservation_expires(start):
    first = _ping(start)
    repeat = _ping(start + timedelta(seconds=10))
    assert repeat.transfer_target == first.transfer_target

    call_records_expire_due(now=start + TTL)

    assert sorted(CallRecord.objects.values_list("outcome", flat=True)) == ["expired", "repeat"]


def test_a_released_reservation_leaves_its_call_record_released_not_expired(start):
    _ping(start)
    reservation = Reservation.objects.get()
    reservation_release(reservation_id=reservation.pk, now=start + timedelta(seconds=5))

    expiry = call_records_expire_due(now=start + timedelta(seconds=6))

    # The release itself ended the record: the sweep finds nothing left to do.
    assert expiry == Expiry(reservations=0, call_records=0)
    reservation.refresh_from_db()
    assert reservation.status == "released"
    record = CallRecord.objects.get()
    assert (record.outcome, record.billable, record.not_billable_reason) == (
        "released",
        "no",
        "no_call",
    )


def test_releasing_a_reservation_past_its_ttl_changes_nothing_and_the_sweep_expires_it(start):
    # Released after its TTL but before the sweep, it was recorded as released, later than it
    # had in fact ended.
    _ping(start)
    reservation = Reservation.objects.get()

    assert not reservation_release(reservation_id=reservation.pk, now=start + TTL)

    reservation.refresh_from_db()
    assert (reservation.status, reservation.ended_at, reservation.released_by) == (
        "active",
        None,
        None,
    )
    assert call_records_expire_due(now=start + TTL) == Expiry(reservations=1, call_records=1)
    reservation.refresh_from_db()
    assert (reservation.status, reservation.ended_at) == ("expired", reservation.expires_at)


def test_the_sweep_expires_the_call_record_of_a_reservation_a_later_ping_marked_expired(
    start, floor
):
    # Every AZ agent reserved: one more caller, after the TTL, takes the first caller's agent
    # back, and the ping itself marks that stale reservation expired before any sweep ran.
    az_agents = len(floor.agents["AZ"])
    for index in range(az_agents):
        _ping(start, phone=f"+1480555010{index}")
    _ping(start + TTL, phone="+14805550199")
    assert Reservation.objects.filter(status="expired").count() == 1

    expiry = call_records_expire_due(now=start + TTL)

    # The other stale reservations, and the call records of all of them.
    assert expiry == Expiry(reservations=az_agents - 1, call_records=az_agents)
    assert sorted(CallRecord.objects.values_list("outcome", flat=True)) == [
        *["expired"] * az_agents,
        "reserved",
    ]


def test_it_changes_nothing_the_second_time(start):
    _ping(start)
    reservation = Reservation.objects.get()
    call_record_expire(reservation_id=reservation.pk, now=start + TTL)
    rows = list(Reservation.objects.values()), list(CallRecord.objects.values())

    assert call_record_expire(reservation_id=reservation.pk, now=start + TTL * 2) == Expiry(0, 0)
    assert call_records_expire_due(now=start + TTL * 2) == Expiry(0, 0)

    assert (list(Reservation.objects.values()), list(CallRecord.objects.values())) == rows


def test_an_expired_agent_is_handed_out_again_at_once_and_keeps_their_place(start, floor):
    agents = floor.agents["AZ"]  # longest idle first: made first
    idle_since = {agent.pk: agent.idle_since for agent in agents}
    _ping(start, phone="+14805550100")
    first = Reservation.objects.get()
    assert first.agent == agents[0]

    # No sweep has run: time alone frees the agent and the number, and the longest idle agent
    # is still the one whose reservation expired.
    _ping(start + TTL, phone="+14805550101")
    second = Reservation.objects.exclude(pk=first.pk).get()
    assert second.agent == agents[0]
    call_records_expire_due(now=start + TTL)

    assert {a.pk: a.idle_since for a in Agent.objects.filter(pk__in=idle_since)} == idle_since
    assert TransferNumber.objects.get(pk=first.transfer_number_id).held_until == first.expires_at
