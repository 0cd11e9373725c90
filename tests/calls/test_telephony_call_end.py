"""How a call ends on the record, whichever of the carrier's callbacks arrives first.

The caller's call status callback (the parent) may reach us before the Dial's action: the record
counts the seconds the caller spent with someone, and a call nobody answered stays one with 0 s.
"""

from datetime import timedelta

from telephony_support import HANGUP_TWIML, message_twiml

from calls.models import CallRecord, DialAttempt, InboundCall
from routing.models import Agent

PING = {
    "vendorKey": "6ab36a94-5dfb-4336-a559-63da6a5a26d2",
    "phoneNumber": "+14801234567",
    "stateCode": "AZ",
}


def _record(first):
    return CallRecord.objects.get(request_id=first["requestId"])


def _ended(record):
    return (record.outcome, record.call_status, record.duration_seconds)


def test_it_keeps_a_call_that_rang_out_everywhere_at_0_seconds_when_the_caller_hangs_up(
    demo, ping, carrier, settings
):
    first = ping(PING).json()["data"]
    carrier.voice(sid="CA700", to=first["transferTarget"])
    carrier.dial_status(sid="CA700", attempt=1, status="no-answer")
    carrier.dial_status(sid="CA700", attempt=2, status="no-answer")
    sorry = carrier.dial_status(sid="CA700", attempt=3, status="failed")
    assert sorry.content.decode() == message_twiml(settings.TELEPHONY_UNAVAILABLE_MESSAGE)

    carrier.call_status(sid="CA700", status="completed", duration=70)

    record = _record(first)
    assert _ended(record) == ("completed", "failed", 0)
    assert record.ended_at is not None
    assert InboundCall.objects.get(call_sid="CA700").duration_seconds == 70


def test_it_keeps_a_call_the_caller_left_while_it_rang_at_0_seconds_when_the_dial_action_is_late(
    demo, ping, carrier
):
    first = ping(PING).json()["data"]
    reserved = _record(first).agent
    carrier.voice(sid="CA701", to=first["transferTarget"])
    carrier.leg_status(parent="CA701", attempt=1, status="ringing")

    carrier.call_status(sid="CA701", status="completed", duration=15)
    late = carrier.dial_status(sid="CA701", attempt=1, status="canceled")

    assert late.content.decode() == HANGUP_TWIML
    assert _ended(_record(first)) == ("completed", "canceled", 0)
    assert DialAttempt.objects.get(inbound_call__call_sid="CA701").status == "canceled"
    idle_before = reserved.idle_since
    reserved.refresh_from_db()
    assert (reserved.on_call_since, reserved.idle_since) == (None, idle_before)


def test_it_counts_the_talk_time_not_the_whole_call_when_the_dial_action_comes_after_the_call(
    demo, ping, carrier
):
    first = ping(PING).json()["data"]
    reserved = _record(first).agent
    carrier.voice(sid="CA702", to=first["transferTarget"])
    carrier.leg_status(parent="CA702", attempt=1, status="in-progress")
    # The agent answered 40 s before the caller hung up; the whole call lasted 47 s.
    InboundCall.objects.filter(call_sid="CA702").update(
        answered_at=InboundCall.objects.get(call_sid="CA702").answered_at - timedelta(seconds=40)
    )

    carrier.call_status(sid="CA702", status="completed", duration=47)

    assert _ended(_record(first)) == ("completed", "completed", 40)
    reserved.refresh_from_db()
    assert reserved.on_call_since is None and reserved.last_call_ended_at is not None

    late = carrier.dial_status(sid="CA702", attempt=1, status="completed", duration=38)

    assert late.content.decode() == HANGUP_TWIML
    assert _ended(_record(first)) == ("completed", "completed", 38)
    attempt = DialAttempt.objects.get(inbound_call__call_sid="CA702")
    assert (attempt.status, attempt.duration_seconds) == ("completed", 38)
    assert Agent.objects.get(pk=reserved.pk).last_call_ended_at == reserved.last_call_ended_at


def test_it_keeps_a_leg_answered_when_its_ringing_callback_arrives_late(demo, ping, carrier):
    first = ping(PING).json()["data"]
    reserved = _record(first).agent
    carrier.voice(sid="CA703", to=first["transferTarget"])
    carrier.leg_status(parent="CA703", attempt=1, status="in-progress")

    carrier.leg_status(parent="CA703", attempt=1, status="ringing")
    carrier.leg_status(parent="CA703", attempt=1, status="initiated")

    assert DialAttempt.objects.get(inbound_call__call_sid="CA703").status == "answered"
    carrier.call_status(sid="CA703", status="completed", duration=47)
    assert DialAttempt.objects.get(inbound_call__call_sid="CA703").status == "completed"
    record = _record(first)
    assert (record.outcome, record.call_status) == ("completed", "completed")
    reserved.refresh_from_db()
    assert reserved.last_call_ended_at == reserved.idle_since == record.ended_at


def test_it_keeps_the_callers_call_ended_when_an_earlier_status_arrives_late(demo, ping, carrier):
    first = ping(PING).json()["data"]
    carrier.voice(sid="CA704", to=first["transferTarget"])
    carrier.dial_status(sid="CA704", attempt=1, status="completed", duration=30)
    carrier.call_status(sid="CA704", status="completed", duration=35)

    carrier.call_status(sid="CA704", status="in-progress")

    inbound = InboundCall.objects.get(call_sid="CA704")
    assert (inbound.status, inbound.duration_seconds) == ("completed", 35)
