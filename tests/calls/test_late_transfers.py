"""A call that reaches an agent credits its ping's call record, whenever it arrives.

The bug: a transfer that came after its TTL, answered and talked through for 300 s, left its
record reserved, then expired, with no talk time: exports, the funnel and settlement never
credited it.
"""

import time
from datetime import timedelta
from decimal import Decimal

import pytest
from telephony_support import record_of

from calls.lifecycle import call_records_expire_due
from calls.models import InboundCall
from calls.settlement.models import BillingRule
from routing.models import Reservation
from routing.services import database_now, reservation_release_by_staff
from tests.conftest import AZ_PING
from tests.factories import VendorFactory, floor_build


@pytest.fixture
def floor(db):
    vendor, _ = VendorFactory.with_key(authorized_states=["AZ", "CA"], key=AZ_PING["vendorKey"])
    BillingRule.objects.create(
        vendor=vendor,
        effective_from=database_now() - timedelta(days=1),
        payout=Decimal("25.00"),
    )
    return floor_build(agents={"AZ": 3, "CA": 3}, numbers=5)


def _ping_and_let_it_lapse(ping, settings) -> dict:
    settings.RESERVATION_TTL_SECONDS = 1
    first = ping(AZ_PING).json()["data"]
    time.sleep(1.2)  # the real clock: the webhook reads it, and the hold must be past its TTL
    return first


def test_a_late_transfer_answered_for_300_seconds_completes_its_record_and_bills(
    floor, ping, carrier, settings
):
    first = _ping_and_let_it_lapse(ping, settings)
    call_records_expire_due(now=database_now())
    expired = record_of(first)
    assert (expired.outcome, expired.billable, expired.not_billable_reason) == (
        "expired",
        "no",
        "no_call",
    )

    carrier.voice(sid="CA900", to=first["transferTarget"], caller=AZ_PING["phoneNumber"])
    carrier.leg_status(parent="CA900", attempt=1, status="in-progress")
    carrier.dial_status(sid="CA900", attempt=1, status="completed", duration=300)
    carrier.call_status(sid="CA900", status="completed", duration=305)

    record = record_of(first)
    inbound = InboundCall.objects.get(call_sid="CA900")
    assert (inbound.match, inbound.call_record_id) == ("late", record.pk)
    assert (record.outcome, record.duration_seconds, record.call_status) == (
        "completed",
        300,
        "completed",
    )
    assert record.connected_at == inbound.received_at
    assert record.ended_at is not None
    assert record.caller_id_matches is True
    assert (record.billable, record.not_billable_reason, record.payout) == (
        "yes",
        "",
        Decimal("25.00"),
    )
    # The hold itself stays as it ended: the late call did not make it connected.
    assert Reservation.objects.get(pk=record.reservation_id).status == "expired"


def test_a_late_transfer_before_the_sweep_ran_is_credited_and_the_sweep_leaves_it(
    floor, ping, carrier, settings
):
    first = _ping_and_let_it_lapse(ping, settings)
    assert record_of(first).outcome == "reserved"  # no job has marked it yet

    carrier.voice(sid="CA901", to=first["transferTarget"], caller=AZ_PING["phoneNumber"])
    call_records_expire_due(now=database_now())
    carrier.dial_status(sid="CA901", attempt=1, status="completed", duration=120)

    record = record_of(first)
    assert (record.outcome, record.duration_seconds, record.billable) == ("completed", 120, "yes")


def test_a_second_late_call_on_the_same_number_leaves_the_first_calls_record_alone(
    floor, ping, carrier, settings
):
    first = _ping_and_let_it_lapse(ping, settings)
    carrier.voice(sid="CA902", to=first["transferTarget"], caller=AZ_PING["phoneNumber"])
    carrier.dial_status(sid="CA902", attempt=1, status="completed", duration=200)

    carrier.voice(sid="CA903", to=first["transferTarget"], caller=AZ_PING["phoneNumber"])
    carrier.dial_status(sid="CA903", attempt=1, status="completed", duration=20)

    record = record_of(first)
    assert (record.outcome, record.duration_seconds, record.billable) == ("completed", 200, "yes")
    assert InboundCall.objects.get(call_sid="CA903").match == "late"


def test_a_late_transfer_from_another_caller_is_credited_but_not_billed(
    floor, ping, carrier, settings
):
    first = _ping_and_let_it_lapse(ping, settings)

    carrier.voice(sid="CA904", to=first["transferTarget"], caller="+16025550123")
    carrier.dial_status(sid="CA904", attempt=1, status="completed", duration=300)

    record = record_of(first)
    assert (record.outcome, record.duration_seconds, record.caller_id_matches) == (
        "completed",
        300,
        False,
    )
    assert (record.billable, record.not_billable_reason, record.payout) == (
        "no",
        "unmatched",
        Decimal("0.00"),
    )


def test_an_agent_answering_a_late_transfer_after_a_release_credits_the_released_record(
    floor, ping, carrier, settings
):
    first = ping(AZ_PING).json()["data"]
    reservation_release_by_staff(
        reservation_id=record_of(first).reservation_id,
        now=database_now(),
        actor=None,
        reason="Caller asked us to wait.",
    )
    assert record_of(first).outcome == "released"

    carrier.voice(sid="CA905", to=first["transferTarget"], caller=AZ_PING["phoneNumber"])
    carrier.dial_status(sid="CA905", attempt=1, status="completed", duration=95)

    record = record_of(first)
    assert (record.outcome, record.duration_seconds, record.billable) == ("completed", 95, "yes")
