"""How a call ends on the record, whichever of the carrier's callbacks arrives first.

The caller's call status callback (the parent) may reach us before the Dial's action: the record
counts the seconds the caller spent with someone, and a call nobody answered stays one with 0 s.
"""

from datetime import timedelta

import pytest
from telephony_support import HANGUP_TWIML, message_twiml, record_of

from calls.models import DialAttempt, InboundCall
from routing.models import Agent
from tests.conftest import AZ_PING
from tests.factories import VendorFactory, floor_build


@pytest.fixture
def floor(db):
    """A vendor for AZ and CA whose key AZ_PING sends; three agents licensed for AZ (as many
    as the carrier fixture's tries), three for CA; five transfer numbers."""
    VendorFactory.with_key(authorized_states=["AZ", "CA"], key=AZ_PING["vendorKey"])
    return floor_build(agents={"AZ": 3, "CA": 3}, numbers=5)


def _ended(record):
    return (record.outcome, record.call_status, record.duration_seconds)


def test_it_keeps_a_call_that_rang_out_everywhere_at_0_seconds_when_the_caller_hangs_up(
    floor, ping, carrier, settings
):
    first = ping(AZ_PING).json()["data"]
    carrier.voice(sid="CA700", to=first["transferTarget"])
    carrier.dial_status(sid="CA700", attempt=1, status="no-answer")
    carrier.dial_status(sid="CA700", attempt=2, status="no-answer")
    sorry = carrier.dial_status(sid="CA700", attempt=3, status="failed")
    assert sorry.content.decode() == message_twiml(settings.TELEPHONY_UNAVAILABLE_MESSAGE)

    carrier.call_status(sid="CA700", status="completed", duration=70)

    record = record_of(first)
    assert _ended(record) == ("completed", "failed", 0)
    assert record.ended_at is not None
    assert InboundCall.objects.get(call_sid="CA700").duration_seconds == 70


def test_it_keeps_a_call_the_caller_left_while_it_rang_at_0_seconds_when_the_dial_action_is_late(
    floor, ping, carrier
):
    first = ping(AZ_PING).json()["data"]
    reserved = record_of(first).agent
    carrier.voice(sid="CA701", to=first["transferTarget"])
    carrier.leg_status(parent="CA701", attempt=1, status="ringing")

    carrier.call_status(sid="CA701", status="completed", duration=15)
    late = carrier.dial_status(sid="CA701", attempt=1, status="canceled")

    assert late.content.decode() == HANGUP_TWIML
    assert _ended(record_of(first)) == ("completed", "canceled", 0)
    assert DialAttempt.objects.get(inbound_call__call_sid="CA701").status == "canceled"
    idle_before = reserved.idle_since
    reserved.refresh_from_db()
    assert (reserved.on_call_since, reserved.idle_since) == (None, idle_before)


def test_it_counts_the_talk_time_not_the_whole_call_when_the_dial_action_comes_after_the_call(
    floor, ping, carrier
):
    first = ping(AZ_PING).json()["data"]
    reserved = record_of(first).agent
    carrier.voice(sid="CA702", to=first["transferTarget"])
    carrier.leg_status(parent="CA702", attempt=1, status="in-progress")
    # The agent answered 40 s before the caller hung up; the whole call lasted 47 s.
    InboundCall.objects.filter(call_sid="CA702").update(
        answered_at=InboundCall.objects.get(call_sid="CA702").answered_at - timedelta(seconds=40)
    )

    carrier.call_status(sid="CA702", status="completed", duration=47)

    assert _ended(record_of(first)) == ("completed", "completed", 40)
    reserved.refresh_from_db()
    assert reserved.on_call_since is None and reserved.last_call_ended_at is not None

    late = carrier.dial_status(sid="CA702", attempt=1, status="completed", duration=38)

    assert late.content.decode() == HANGUP_TWIML
    assert _ended(record_of(first)) == ("completed", "completed", 38)
    attempt = DialAttempt.objects.get(inbound_call__call_sid="CA702")
    assert (attempt.status, attempt.duration_seconds) == ("completed", 38)
    assert Agent.objects.get(pk=reserved.pk).last_call_ended_at == reserved.last_call_ended_at


def test_it_keeps_a_leg_answered_when_its_ringing_callback_arrives_late(floor, ping, carrier):
    first = ping(AZ_PING).json()["data"]
    reserved = record_of(first).agent
    carrier.voice(sid="CA703", to=first["transferTarget"])
    carrier.leg_status(parent="CA703", attempt=1, status="in-progress")

    carrier.leg_status(parent="CA703", attempt=1, status="ringing")
    carrier.leg_status(parent="CA703", attempt=1, status="initiated")

    assert DialAttempt.objects.get(inbound_call__call_sid="CA703").status == "answered"
    carrier.call_status(sid="CA703", status="completed", duration=47)
    assert DialAttempt.objects.get(inbound_call__call_sid="CA703").status == "completed"
    record = record_of(first)
    assert (record.outcome, record.call_status) == ("completed", "completed")
    reserved.refresh_from_db()
    assert reserved.last_call_ended_at == reserved.idle_since == record.ended_at


def test_it_keeps_the_callers_call_ended_when_an_earlier_status_arrives_late(floor, ping, carrier):
    first = ping(AZ_PING).json()["data"]
    carrier.voice(sid="CA704", to=first["transferTarget"])
    carrier.dial_status(sid="CA704", attempt=1, status="completed", duration=30)
    carrier.call_status(sid="CA704", status="completed", duration=35)

    carrier.call_status(sid="CA704", status="in-progress")

    inbound = InboundCall.objects.get(call_sid="CA704")
    assert (inbound.status, inbound.duration_seconds) == ("completed", 35)


def _talk_heard_only_from_the_dial_action(carrier, ping, sid, *, wrap_up_seconds=30):
    """The agent answers, but the leg's answered callback is lost: the caller's call ends first
    and is settled as canceled, 0 s. Returns the ping's answer and the reserved agent."""
    first = ping(AZ_PING).json()["data"]
    reserved = record_of(first).agent
    Agent.objects.filter(pk=reserved.pk).update(wrap_up_seconds=wrap_up_seconds)
    carrier.voice(sid=sid, to=first["transferTarget"])
    carrier.leg_status(parent=sid, attempt=1, status="ringing")
    carrier.call_status(sid=sid, status="completed", duration=100)
    assert _ended(record_of(first)) == ("completed", "canceled", 0)
    reserved.refresh_from_db()
    assert reserved.on_call_since is None and reserved.last_call_ended_at is None
    return first, reserved


def _only_agent_in_az(reserved):
    Agent.objects.filter(licenses__state="AZ").exclude(pk=reserved.pk).update(status="offline")


def test_it_records_a_talk_whose_answered_callback_was_lost_when_the_dial_action_says_so_late(
    floor, ping, carrier
):
    first, reserved = _talk_heard_only_from_the_dial_action(carrier, ping, "CA705")

    late = carrier.dial_status(sid="CA705", attempt=1, status="completed", duration=95)

    assert late.content.decode() == HANGUP_TWIML
    record = record_of(first)
    assert _ended(record) == ("completed", "completed", 95)
    attempt = DialAttempt.objects.get(inbound_call__call_sid="CA705")
    assert (attempt.status, attempt.duration_seconds) == ("completed", 95)
    inbound = InboundCall.objects.get(call_sid="CA705")
    assert inbound.answered_at == inbound.ended_at - timedelta(seconds=95)
    # What a talked call gives the agent, from when the call ended.
    agent = Agent.objects.get(pk=reserved.pk)
    assert agent.on_call_since is None
    assert agent.last_call_ended_at == agent.idle_since == inbound.ended_at
    assert agent.held_until == inbound.ended_at + timedelta(seconds=30)

    again = carrier.dial_status(sid="CA705", attempt=1, status="completed", duration=95)

    assert again.content.decode() == HANGUP_TWIML
    assert _ended(record_of(first)) == ("completed", "completed", 95)
    assert Agent.objects.get(pk=reserved.pk).held_until == agent.held_until


def test_it_leaves_an_agent_on_another_call_by_then_alone_when_a_late_dial_action_says_they_talked(
    floor, ping, carrier
):
    first, reserved = _talk_heard_only_from_the_dial_action(carrier, ping, "CA706")
    _only_agent_in_az(reserved)
    second = ping({**AZ_PING, "phoneNumber": "+14805550123"}).json()["data"]
    carrier.voice(sid="CA707", to=second["transferTarget"])
    on_the_next_call = Agent.objects.get(pk=reserved.pk)
    assert on_the_next_call.on_call_since is not None

    carrier.dial_status(sid="CA706", attempt=1, status="completed", duration=95)

    assert _ended(record_of(first)) == ("completed", "completed", 95)
    agent = Agent.objects.get(pk=reserved.pk)
    assert (agent.on_call_since, agent.idle_since, agent.held_until, agent.last_call_ended_at) == (
        on_the_next_call.on_call_since,
        reserved.idle_since,
        None,
        None,
    )


@pytest.mark.parametrize(
    "wrap_up_seconds", [10, 600], ids=["the-pings-hold-ends-later", "the-wrap-up-ends-later"]
)
def test_an_agent_a_ping_held_since_is_held_until_the_later_of_that_hold_and_the_wrap_up(
    floor, ping, carrier, wrap_up_seconds
):
    _, reserved = _talk_heard_only_from_the_dial_action(
        carrier, ping, "CA708", wrap_up_seconds=wrap_up_seconds
    )
    _only_agent_in_az(reserved)
    second = ping({**AZ_PING, "phoneNumber": "+14805550123"}).json()["data"]
    held = Agent.objects.get(pk=reserved.pk).held_until
    assert record_of(second).agent == reserved and held is not None

    carrier.dial_status(sid="CA708", attempt=1, status="completed", duration=95)

    ended_at = InboundCall.objects.get(call_sid="CA708").ended_at
    agent = Agent.objects.get(pk=reserved.pk)
    assert agent.held_until == max(held, ended_at + timedelta(seconds=wrap_up_seconds))
    assert agent.idle_since == agent.last_call_ended_at == ended_at
