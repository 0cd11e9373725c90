"""An agent who does not answer: the next free agent for the state, then the overflow number."""

import pytest
from telephony_support import HANGUP_TWIML, OVERFLOW, dial_twiml, message_twiml

from calls.models import CallRecord, DialAttempt, InboundCall
from routing.models import Agent
from tests.conftest import AZ_PING
from tests.factories import VendorFactory, floor_build


@pytest.fixture
def floor(db):
    """A vendor for AZ and CA whose key AZ_PING sends; three agents licensed for AZ (as many
    as the carrier fixture's tries), three for CA; five transfer numbers."""
    VendorFactory.with_key(authorized_states=["AZ", "CA"], key=AZ_PING["vendorKey"])
    return floor_build(agents={"AZ": 3, "CA": 3}, numbers=5)


def _attempts(sid):
    return list(
        DialAttempt.objects.filter(inbound_call__call_sid=sid).values_list(
            "attempt", "agent__name", "destination", "status"
        )
    )


def test_it_tries_the_next_agent_then_the_overflow_number(floor, ping, carrier, settings):
    settings.TELEPHONY_MAX_AGENT_TRIES = 2
    settings.TELEPHONY_OVERFLOW_NUMBER = OVERFLOW
    first = ping(AZ_PING).json()["data"]
    reserved = CallRecord.objects.get(request_id=first["requestId"]).agent
    # Longest idle after the reserved agent: the next AZ agent in idle order.
    following = (
        Agent.objects.licensed_for("AZ").exclude(pk=reserved.pk).order_by("idle_since", "id")[0]
    )
    carrier.voice(sid="CA200", to=first["transferTarget"])

    second = carrier.dial_status(sid="CA200", attempt=1, status="no-answer")
    assert second.content.decode() == dial_twiml(following.destination, 2)
    reserved.refresh_from_db()
    assert (reserved.status, reserved.on_call_since) == (Agent.Status.OFFLINE, None)

    third = carrier.dial_status(sid="CA200", attempt=2, status="busy")
    assert third.content.decode() == dial_twiml(OVERFLOW, 3)
    following.refresh_from_db()
    assert following.status == Agent.Status.OFFLINE

    done = carrier.dial_status(sid="CA200", attempt=3, status="completed", duration=40)
    assert done.content.decode() == HANGUP_TWIML
    assert _attempts("CA200") == [
        (1, reserved.name, reserved.destination, "no-answer"),
        (2, following.name, following.destination, "busy"),
        (3, None, OVERFLOW, "completed"),
    ]
    record = CallRecord.objects.get(request_id=first["requestId"])
    assert (record.outcome, record.duration_seconds) == ("completed", 40)
    assert InboundCall.objects.get(call_sid="CA200").routed_to == OVERFLOW


def test_it_says_sorry_when_every_try_rang_out_and_there_is_no_overflow(
    floor, ping, carrier, settings
):
    first = ping(AZ_PING).json()["data"]
    carrier.voice(sid="CA201", to=first["transferTarget"])
    carrier.dial_status(sid="CA201", attempt=1, status="no-answer")
    carrier.dial_status(sid="CA201", attempt=2, status="no-answer")

    last = carrier.dial_status(sid="CA201", attempt=3, status="failed")

    assert last.content.decode() == message_twiml(settings.TELEPHONY_UNAVAILABLE_MESSAGE)
    assert [row[3] for row in _attempts("CA201")] == ["no-answer", "no-answer", "failed"]
    assert InboundCall.objects.get(call_sid="CA201").routed_to == "message"
    assert not Agent.objects.licensed_for("AZ").filter(status=Agent.Status.AVAILABLE).exists()


def test_it_answers_a_repeated_dial_status_without_moving_on_twice(floor, ping, carrier):
    first = ping(AZ_PING).json()["data"]
    carrier.voice(sid="CA202", to=first["transferTarget"])
    one = carrier.dial_status(sid="CA202", attempt=1, status="no-answer")
    two = carrier.dial_status(sid="CA202", attempt=1, status="no-answer")

    assert one.content == two.content
    assert len(_attempts("CA202")) == 2


def test_it_frees_the_ringing_agent_without_restarting_their_idle_clock_when_the_caller_hangs_up(
    floor, ping, carrier
):
    first = ping(AZ_PING).json()["data"]
    reserved = CallRecord.objects.get(request_id=first["requestId"]).agent
    carrier.voice(sid="CA203", to=first["transferTarget"])

    gone = carrier.dial_status(sid="CA203", attempt=1, status="canceled")

    assert gone.content.decode() == HANGUP_TWIML
    idle_before = reserved.idle_since
    reserved.refresh_from_db()
    assert (reserved.status, reserved.on_call_since, reserved.idle_since) == (
        Agent.Status.AVAILABLE,
        None,
        idle_before,
    )
    record = CallRecord.objects.get(request_id=first["requestId"])
    assert (record.outcome, record.call_status, record.duration_seconds) == (
        "completed",
        "canceled",
        0,
    )
