"""A whole call, end to end through HTTP: ping, transfer, agent, status callbacks, agent free."""

import pytest
from telephony_support import HANGUP_TWIML, dial_twiml

from calls.models import CallRecord, DialAttempt, InboundCall
from routing.models import Agent, Reservation
from tests.factories import VendorFactory, floor_build

KEY = "5b2f8d41-93ce-4a07-8e1d-6c4a2b9f0e73"
PING = {
    "vendorKey": KEY,
    "phoneNumber": "+14801234567",
    "stateCode": "AZ",
    "lead_id": "L-12345",
    "source": "google",
}
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response />'


@pytest.fixture
def floor(db):
    """A vendor for AZ with KEY, three agents licensed for AZ, five transfer numbers."""
    VendorFactory.with_key(authorized_states=["AZ"], key=KEY)
    return floor_build(agents={"AZ": 3}, numbers=5)


def test_it_connects_the_transferred_call_to_the_reserved_agent_and_frees_them_at_the_end(
    floor, ping, carrier
):
    first_number = str(floor.numbers[0].number)
    first = ping(PING).json()["data"]
    assert first["agentCount"] == len(floor.agents["AZ"])
    assert first["transferTarget"] == first_number
    record = CallRecord.objects.get(request_id=first["requestId"])
    reserved = record.agent

    answer = carrier.voice(sid="CA100", to=first_number, caller="+14801234567")

    assert answer.status_code == 200
    assert answer["Content-Type"].startswith("text/xml")
    assert answer.content.decode() == dial_twiml(reserved.destination, 1)
    reservation = Reservation.objects.get(pk=record.reservation_id)
    assert reservation.status == Reservation.Status.CONNECTED
    assert reservation.ended_at is not None
    record.refresh_from_db()
    assert record.outcome == CallRecord.Outcome.CONNECTED
    assert record.connected_at == reservation.ended_at
    assert (record.caller_id, record.caller_id_matches) == ("+14801234567", True)
    inbound = InboundCall.objects.get(call_sid="CA100")
    assert (inbound.match, inbound.call_record_id, inbound.state) == ("matched", record.pk, "AZ")
    assert inbound.routed_to == reserved.destination
    reserved.refresh_from_db()
    assert reserved.on_call_since == reservation.ended_at
    assert not Agent.objects.free(reservation.ended_at).filter(pk=reserved.pk).exists()

    # The agent's leg rings and is answered; the Dial ends after 125 s; the caller hangs up.
    assert carrier.leg_status(parent="CA100", attempt=1, status="ringing").status_code == 200
    assert carrier.leg_status(parent="CA100", attempt=1, status="in-progress").status_code == 200
    record.refresh_from_db()
    assert (record.outcome, record.call_status) == ("connected", "answered")
    assert DialAttempt.objects.get(inbound_call__call_sid="CA100").status == "answered"
    ended = carrier.dial_status(sid="CA100", attempt=1, status="completed", duration=125)
    assert ended.content.decode() == HANGUP_TWIML
    final = carrier.call_status(sid="CA100", status="completed", duration=131)
    assert (final.status_code, final.content.decode()) == (200, EMPTY_TWIML)

    record.refresh_from_db()
    assert record.outcome == CallRecord.Outcome.COMPLETED
    assert (record.duration_seconds, record.call_status) == (125, "completed")
    assert record.ended_at is not None
    inbound.refresh_from_db()
    assert (inbound.status, inbound.duration_seconds) == ("completed", 131)
    assert inbound.answered_at is not None and inbound.ended_at is not None
    attempt = DialAttempt.objects.get(inbound_call=inbound)
    assert (attempt.attempt, attempt.agent_id, attempt.status, attempt.duration_seconds) == (
        1,
        reserved.pk,
        "completed",
        125,
    )
    reserved.refresh_from_db()
    assert reserved.on_call_since is None
    assert reserved.status == Agent.Status.AVAILABLE
    assert reserved.last_call_ended_at == reserved.idle_since == record.ended_at

    # Free again: a new ping counts them all, and the longest idle is now someone else.
    again = ping({**PING, "phoneNumber": "+14805550123"}).json()["data"]
    assert again["agentAvailable"] is True
    assert again["agentCount"] == len(floor.agents["AZ"])
    assert CallRecord.objects.get(request_id=again["requestId"]).agent_id != reserved.pk


def test_it_holds_the_agent_through_their_wrap_up_time(floor, ping, carrier):
    first = ping(PING).json()["data"]
    reserved = CallRecord.objects.get(request_id=first["requestId"]).agent
    Agent.objects.filter(pk=reserved.pk).update(wrap_up_seconds=3600)
    carrier.voice(sid="CA101", to=first["transferTarget"])
    carrier.dial_status(sid="CA101", attempt=1, status="completed", duration=30)

    reserved.refresh_from_db()
    assert reserved.on_call_since is None
    assert (reserved.held_until - reserved.last_call_ended_at).total_seconds() == 3600
    # Everyone but the agent in wrap-up.
    answer = ping({**PING, "phoneNumber": "+14805550123"}).json()["data"]
    assert answer["agentCount"] == len(floor.agents["AZ"]) - 1


def test_it_records_both_numbers_when_the_caller_id_differs_from_the_ping(floor, ping, carrier):
    first = ping(PING).json()["data"]
    carrier.voice(sid="CA102", to=first["transferTarget"], caller="+1 (602) 555-0100")

    record = CallRecord.objects.get(request_id=first["requestId"])
    assert (record.phone_number, record.caller_id, record.caller_id_matches) == (
        "+14801234567",
        "+16025550100",
        False,
    )


def test_it_leaves_the_witness_unknown_when_the_caller_id_is_withheld(floor, ping, carrier):
    first = ping(PING).json()["data"]
    carrier.voice(sid="CA103", to=first["transferTarget"], caller="Anonymous")

    record = CallRecord.objects.get(request_id=first["requestId"])
    assert (record.caller_id, record.caller_id_matches) == ("Anonymous", None)


def test_it_frees_the_agent_when_the_caller_hangs_up_mid_call_without_a_dial_action(
    floor, ping, carrier
):
    first = ping(PING).json()["data"]
    reserved = CallRecord.objects.get(request_id=first["requestId"]).agent
    carrier.voice(sid="CA104", to=first["transferTarget"])
    carrier.leg_status(parent="CA104", attempt=1, status="in-progress")
    carrier.leg_status(parent="CA104", attempt=1, status="completed", duration=40)
    carrier.call_status(sid="CA104", status="completed", duration=47)

    record = CallRecord.objects.get(request_id=first["requestId"])
    # The seconds with the agent (the leg's own duration), not the whole call with its ringing.
    assert (record.outcome, record.duration_seconds) == ("completed", 40)
    assert DialAttempt.objects.get(inbound_call__call_sid="CA104").status == "completed"
    reserved.refresh_from_db()
    assert reserved.on_call_since is None and reserved.last_call_ended_at is not None


def test_it_takes_durations_and_attempts_in_other_than_ascii_digits_as_not_given(
    floor, ping, carrier
):
    first = ping(PING).json()["data"]
    reserved = CallRecord.objects.get(request_id=first["requestId"]).agent
    carrier.voice(sid="CA107", to=first["transferTarget"])

    # Superscript digits: str.isdigit() says yes, int() refuses them.
    ended = carrier.post(
        "/telephony/dial-status?attempt=%C2%B9",
        {
            "CallSid": "CA107",
            "DialCallStatus": "completed",
            "DialCallDuration": "\u00b9\u00b2\u2075",
        },
    )
    final = carrier.post(
        "/telephony/status",
        {"CallSid": "CA107", "CallStatus": "completed", "CallDuration": "\u00b9\u00b3\u00b9"},
    )

    assert ended.content.decode() == HANGUP_TWIML
    assert final.content.decode() == EMPTY_TWIML
    record = CallRecord.objects.get(request_id=first["requestId"])
    assert (record.outcome, record.call_status, record.duration_seconds) == (
        "completed",
        "completed",
        None,
    )
    attempt = DialAttempt.objects.get(inbound_call__call_sid="CA107")
    assert (attempt.attempt, attempt.status, attempt.duration_seconds) == (1, "completed", None)
    inbound = InboundCall.objects.get(call_sid="CA107")
    assert (inbound.status, inbound.duration_seconds) == ("completed", None)
    reserved.refresh_from_db()
    assert reserved.on_call_since is None and reserved.last_call_ended_at == record.ended_at


def test_it_answers_a_repeated_voice_webhook_as_before_without_a_second_attempt(
    floor, ping, carrier
):
    first = ping(PING).json()["data"]
    one = carrier.voice(sid="CA105", to=first["transferTarget"])
    two = carrier.voice(sid="CA105", to=first["transferTarget"])

    assert one.content == two.content
    assert InboundCall.objects.filter(call_sid="CA105").count() == 1
    assert DialAttempt.objects.filter(inbound_call__call_sid="CA105").count() == 1


def test_staff_see_an_inbound_call_and_its_attempts_in_the_admin(
    floor, ping, carrier, superuser_client
):
    first = ping(PING).json()["data"]
    carrier.voice(sid="CA106", to=first["transferTarget"])
    inbound = InboundCall.objects.get(call_sid="CA106")

    listing = superuser_client.get("/admin/calls/inboundcall/?match=matched")
    detail = superuser_client.get(f"/admin/calls/inboundcall/{inbound.pk}/change/")

    assert listing.status_code == 200 and "CA106" in listing.content.decode()
    assert detail.status_code == 200
    assert inbound.routed_to in detail.content.decode()
