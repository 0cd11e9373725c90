"""Calls that match no live reservation are never dropped: someone, or a message, answers."""

import time

import pytest
from telephony_support import OVERFLOW, agent_with_token, dial_twiml, message_twiml

from calls.models import CallRecord, DialAttempt, InboundCall
from routing.models import Agent, Reservation
from tests.conftest import AZ_PING
from tests.factories import VendorFactory, floor_build


@pytest.fixture
def floor(db):
    """A vendor for AZ and CA whose key AZ_PING sends; three agents licensed for AZ (as many
    as the carrier fixture's tries), three for CA; five transfer numbers."""
    VendorFactory.with_key(authorized_states=["AZ", "CA"], key=AZ_PING["vendorKey"])
    return floor_build(agents={"AZ": 3, "CA": 3}, numbers=5)


def test_it_routes_a_call_arriving_after_the_ttl_as_late_to_an_agent_of_the_state(
    floor, ping, carrier, settings
):
    settings.RESERVATION_TTL_SECONDS = 1
    first = ping(AZ_PING).json()["data"]
    record = CallRecord.objects.get(request_id=first["requestId"])
    time.sleep(1.2)  # the real clock: the webhook reads it, and the hold must be past its TTL
    expected = (
        Agent.objects.licensed_for("AZ").filter(status="available").order_by("idle_since", "id")[0]
    )

    answer = carrier.voice(sid="CA300", to=first["transferTarget"], caller="Anonymous")

    assert answer.content.decode() == dial_twiml(expected.destination, 1)
    inbound = InboundCall.objects.get(call_sid="CA300")
    assert (inbound.match, inbound.call_record_id, inbound.state) == ("late", record.pk, "AZ")
    reservation = Reservation.objects.get(pk=record.reservation_id)
    assert reservation.status != Reservation.Status.CONNECTED
    record.refresh_from_db()
    # The late call still credits the ping's record: it follows the call from here.
    assert (record.outcome, record.connected_at, record.billable) == (
        "connected",
        inbound.received_at,
        "pending",
    )
    expected.refresh_from_db()
    assert expected.on_call_since is not None


@pytest.mark.parametrize("caller", ["+14801234567", "Anonymous"], ids=["az-caller", "withheld"])
def test_it_routes_a_call_after_its_agent_went_offline_to_an_agent_of_the_reservations_state(
    floor, ping, api, carrier, settings, caller
):
    settings.TELEPHONY_OVERFLOW_NUMBER = OVERFLOW
    # An Arizona number, but the vendor says the caller is in California.
    first = ping({**AZ_PING, "stateCode": "CA"}).json()["data"]
    record = CallRecord.objects.get(request_id=first["requestId"])
    reserved, token = agent_with_token(record.agent.name)
    offline = api.post(
        f"/api/v1/agents/{reserved.pk}/status",
        {"status": "offline"},
        format="json",
        HTTP_AUTHORIZATION=f"Token {token}",
    )
    assert offline.json()["data"]["releasedReservations"] == 1
    expected = (
        Agent.objects.licensed_for("CA").filter(status="available").order_by("idle_since", "id")[0]
    )

    answer = carrier.voice(sid="CA305", to=first["transferTarget"], caller=caller)

    assert answer.content.decode() == dial_twiml(expected.destination, 1)
    inbound = InboundCall.objects.get(call_sid="CA305")
    assert (inbound.match, inbound.call_record_id, inbound.state) == ("late", record.pk, "CA")
    assert DialAttempt.objects.get(inbound_call=inbound).agent_id == expected.pk
    assert Reservation.objects.get(pk=record.reservation_id).status == "released"
    record.refresh_from_db()
    assert (record.outcome, record.connected_at) == ("connected", inbound.received_at)


def test_it_routes_a_call_to_an_unknown_number_by_the_callers_area_code(floor, carrier):
    expected = (
        Agent.objects.licensed_for("CA").filter(status="available").order_by("idle_since", "id")[0]
    )

    answer = carrier.voice(sid="CA301", to="+15005550006", caller="+1 415 555 0100")

    assert answer.content.decode() == dial_twiml(expected.destination, 1)
    inbound = InboundCall.objects.get(call_sid="CA301")
    assert (inbound.match, inbound.state, inbound.call_record) == ("unknown_number", "CA", None)
    assert DialAttempt.objects.get(inbound_call=inbound).agent_id == expected.pk


def test_it_sends_a_call_with_no_reservation_and_no_known_caller_to_the_overflow_number(
    floor, carrier, settings
):
    settings.TELEPHONY_OVERFLOW_NUMBER = OVERFLOW

    answer = carrier.voice(sid="CA302", to=str(floor.numbers[0].number), caller="+442071234567")

    assert answer.content.decode() == dial_twiml(OVERFLOW, 1)
    inbound = InboundCall.objects.get(call_sid="CA302")
    assert (inbound.match, inbound.state, inbound.routed_to) == ("no_reservation", "", OVERFLOW)


def test_it_says_a_polite_message_when_there_is_no_one_and_no_overflow(floor, carrier, settings):
    Agent.objects.update(status=Agent.Status.OFFLINE)

    answer = carrier.voice(sid="CA303", to=str(floor.numbers[0].number), caller="+14801234567")

    assert answer.content.decode() == message_twiml(settings.TELEPHONY_UNAVAILABLE_MESSAGE)
    inbound = InboundCall.objects.get(call_sid="CA303")
    assert (inbound.match, inbound.state, inbound.routed_to) == ("no_reservation", "AZ", "message")


def test_it_answers_valid_twiml_and_records_a_call_whose_fields_are_missing(
    floor, carrier, settings
):
    answer = carrier.post("/telephony/voice", {"Junk": "\x00" * 10})

    assert answer.status_code == 200
    assert answer.content.decode() == message_twiml(settings.TELEPHONY_UNAVAILABLE_MESSAGE)
    inbound = InboundCall.objects.get()
    assert inbound.call_sid.startswith("missing-")
    assert (inbound.match, inbound.to_number, inbound.routed_to) == (
        "unknown_number",
        "",
        "message",
    )


def test_it_answers_garbage_callbacks_for_calls_it_never_saw_with_valid_twiml(floor, carrier):
    dial = carrier.dial_status(sid="CA-nobody", attempt=1, status="??")
    status = carrier.post("/telephony/status", {"CallSid": "x" * 500, "CallDuration": "-4"})
    odd = carrier.post("/telephony/dial-status?attempt=zero", {"CallSid": ""})

    assert [dial.status_code, status.status_code, odd.status_code] == [200, 200, 200]
    assert dial.content.decode().endswith("<Response><Hangup /></Response>")
    assert not InboundCall.objects.exists()


def test_it_refuses_a_get_on_a_webhook_with_405_and_records_nothing(floor, client):
    assert client.get("/telephony/voice").status_code == 405
    assert not InboundCall.objects.exists()


def test_it_still_sends_the_caller_somewhere_when_a_webhook_fails_inside(
    floor, carrier, settings, monkeypatch
):
    def broken(**fields):
        raise RuntimeError("the database went away")

    monkeypatch.setattr("calls.telephony.views.inbound_call_receive", broken)
    settings.TELEPHONY_OVERFLOW_NUMBER = OVERFLOW

    answer = carrier.voice(sid="CA304", to=str(floor.numbers[0].number))

    assert answer.status_code == 200
    assert answer.content.decode() == (
        '<?xml version="1.0" encoding="UTF-8"?><Response>'
        f'<Dial answerOnBridge="true" timeout="20"><Number>{OVERFLOW}</Number></Dial></Response>'
    )
