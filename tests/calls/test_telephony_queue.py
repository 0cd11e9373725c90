"""No caller dropped: a transferred caller nobody can take waits in the queue, through the
carrier's webhooks, until an agent comes free, they hang up, or their longest wait is over."""

from datetime import timedelta

import pytest
from django.db.models import F
from telephony_support import (
    HANGUP_TWIML,
    LEAVE_TWIML,
    OVERFLOW,
    Carrier,
    RecordingCarrierApi,
    dial_twiml,
    enqueue_twiml,
    message_twiml,
)

from calls.checks import telephony_queue_redirects
from calls.models import CallRecord, DialAttempt, InboundCall
from calls.telephony.carrier_api import TwilioRestApi
from calls.telephony.queue import waiting_callers_sweep
from calls.telephony.service import agent_calls_end_stale
from routing.models import Agent, WaitingCaller
from tests.factories import VendorFactory, floor_build

KEY = "5b2f8d41-93ce-4a07-8e1d-6c4a2b9f0e73"
BASE = "https://calls.example.com"
MAX_WAIT = 120


def _ping(phone: str) -> dict:
    return {"vendorKey": KEY, "phoneNumber": phone, "stateCode": "AZ"}


@pytest.fixture
def floor(db):
    """Acme Leads for AZ with KEY; two agents licensed for AZ (Ann first in idle order, then
    Bob); five transfer numbers."""
    VendorFactory.with_key(name="Acme Leads", authorized_states=["AZ"], key=KEY)
    floor = floor_build(agents={"AZ": 2}, numbers=5)
    ann, bob = floor.agents["AZ"]
    Agent.objects.filter(pk=ann.pk).update(name="Ann")
    Agent.objects.filter(pk=bob.pk).update(name="Bob")
    return floor


@pytest.fixture
def queue_carrier(carrier, client, settings):
    """The carrier, with the queue on and a public URL for our REST redirects."""
    settings.TELEPHONY_QUEUE_MAX_WAIT_SECONDS = MAX_WAIT
    settings.TELEPHONY_PUBLIC_BASE_URL = BASE
    return Carrier(client, base=BASE)


def _agents():
    return Agent.objects.get(name="Ann"), Agent.objects.get(name="Bob")


def _ann_talking_and_bob_rang_out(ping, carrier):
    """Ann is on a call (CA1); the caller of CA2 had Bob, who did not answer: CA2 waits.
    Returns CA2's call record."""
    first = ping(_ping("+14805550101")).json()["data"]
    second = ping(_ping("+14805550102")).json()["data"]
    carrier.voice(sid="CA1", to=first["transferTarget"], caller="+14805550101")
    carrier.leg_status(parent="CA1", attempt=1, status="in-progress")
    carrier.voice(sid="CA2", to=second["transferTarget"], caller="+14805550102")
    waiting = carrier.dial_status(sid="CA2", attempt=1, status="no-answer")
    assert waiting.content.decode() == enqueue_twiml("AZ")
    return CallRecord.objects.get(request_id=second["requestId"])


def test_a_caller_waits_and_goes_to_the_first_agent_who_comes_free(
    floor, ping, queue_carrier, django_capture_on_commit_callbacks
):
    carrier = queue_carrier
    record = _ann_talking_and_bob_rang_out(ping, carrier)
    ann, bob = _agents()
    inbound = InboundCall.objects.get(call_sid="CA2")
    assert (inbound.routed_to, inbound.dequeued_at, inbound.wait_result) == ("queue", None, "")
    assert inbound.queued_at is not None and inbound.waiting
    record.refresh_from_db()
    assert (record.queued_at, record.dequeued_at) == (inbound.queued_at, None)

    # While they wait: the message once, then our hold music, again and again.
    first_wait = carrier.queue_wait(sid="CA2", queue_time=0).content.decode()
    assert "<Say>Thank you for holding." in first_wait
    assert f"<Play>{BASE}/static/telephony/hold-music.wav</Play>" in first_wait
    later_wait = carrier.queue_wait(sid="CA2", queue_time=15).content.decode()
    assert "<Say>" not in later_wait and "hold-music.wav" in later_wait
    # Nobody else takes the agent the caller waits for: a ping finds no one.
    assert ping(_ping("+14805550103")).json()["data"]["agentAvailable"] is False

    # Ann's call ends: she is the caller's at once, and the carrier is asked to bring them.
    with django_capture_on_commit_callbacks(execute=True):
        ended = carrier.dial_status(sid="CA1", attempt=1, status="completed", duration=60)
    assert ended.content.decode() == HANGUP_TWIML
    assert RecordingCarrierApi.redirects == [("CA2", f"{BASE}/telephony/queue/leave")]
    ann.refresh_from_db()
    assert ann.on_call_since is not None
    assert ping(_ping("+14805550104")).json()["data"]["agentAvailable"] is False

    # The carrier follows the redirect: the caller is put through to Ann.
    connect = carrier.queue_leave(sid="CA2", result=None)
    assert connect.content.decode() == dial_twiml(ann.destination, 2)
    # The Enqueue's own action, should it come too, answers the same and dials no one else.
    again = carrier.queue_leave(sid="CA2", result="redirected")
    assert again.content.decode() == dial_twiml(ann.destination, 2)
    assert list(
        DialAttempt.objects.filter(inbound_call__call_sid="CA2").values_list("attempt", "agent")
    ) == [(1, bob.pk), (2, ann.pk)]

    inbound.refresh_from_db()
    assert inbound.wait_result == "connected" and not inbound.waiting
    assert inbound.dequeued_at >= inbound.queued_at
    assert inbound.routed_to == ann.destination
    record.refresh_from_db()
    assert (record.queued_at, record.dequeued_at, record.wait_result) == (
        inbound.queued_at,
        inbound.dequeued_at,
        "connected",
    )
    assert WaitingCaller.objects.get(call_sid="CA2").status == "ended"

    # And the call goes on as any other: answered, talked, over.
    carrier.leg_status(parent="CA2", attempt=2, status="in-progress")
    carrier.dial_status(sid="CA2", attempt=2, status="completed", duration=45)
    carrier.call_status(sid="CA2", status="completed", duration=190)
    record.refresh_from_db()
    assert (record.outcome, record.duration_seconds) == ("completed", 45)
    ann.refresh_from_db()
    assert ann.on_call_since is None


def test_without_a_rest_redirect_the_caller_leaves_at_their_next_wait(
    floor, ping, queue_carrier, settings, django_capture_on_commit_callbacks
):
    settings.TELEPHONY_PUBLIC_BASE_URL = ""
    carrier = Carrier(queue_carrier.client)
    _ann_talking_and_bob_rang_out(ping, carrier)
    ann, _ = _agents()

    with django_capture_on_commit_callbacks(execute=True):
        carrier.dial_status(sid="CA1", attempt=1, status="completed", duration=60)

    assert RecordingCarrierApi.redirects == []
    assert carrier.queue_wait(sid="CA2", queue_time=20).content.decode() == LEAVE_TWIML
    left = carrier.queue_leave(sid="CA2", result="leave")
    assert left.content.decode() == dial_twiml(ann.destination, 2)


def test_the_longest_waiting_caller_is_first(
    floor, ping, queue_carrier, django_capture_on_commit_callbacks
):
    carrier = queue_carrier
    _ann_talking_and_bob_rang_out(ping, carrier)
    # A later caller, on a number nobody reserved, from Arizona: no one is free, they wait too.
    later = carrier.voice(sid="CA3", to=str(floor.numbers[4].number), caller="+14805550199")
    assert later.content.decode() == enqueue_twiml("AZ")

    with django_capture_on_commit_callbacks(execute=True):
        carrier.dial_status(sid="CA1", attempt=1, status="completed", duration=60)

    assert [sid for sid, _ in RecordingCarrierApi.redirects] == ["CA2"]
    assert carrier.queue_wait(sid="CA3", queue_time=20).content.decode() != LEAVE_TWIML
    assert InboundCall.objects.get(call_sid="CA3").waiting


def test_an_agent_whose_wrap_up_runs_out_goes_to_the_waiting_caller_not_to_a_ping(
    floor, ping, queue_carrier, django_capture_on_commit_callbacks
):
    carrier = queue_carrier
    _ann_talking_and_bob_rang_out(ping, carrier)
    ann, _ = _agents()
    Agent.objects.filter(pk=ann.pk).update(wrap_up_seconds=30)
    carrier.dial_status(sid="CA1", attempt=1, status="completed", duration=60)
    ann.refresh_from_db()
    assert ann.held_until is not None and ann.on_call_since is None

    # Time frees her (the wrap-up is over): no callback says so.
    Agent.objects.filter(pk=ann.pk).update(held_until=F("held_until") - timedelta(seconds=31))
    assert ping(_ping("+14805550105")).json()["data"]["agentAvailable"] is False
    with django_capture_on_commit_callbacks(execute=True):
        assert waiting_callers_sweep() == 1

    assert RecordingCarrierApi.redirects == [("CA2", f"{BASE}/telephony/queue/leave")]
    assert carrier.queue_leave(sid="CA2", result=None).content.decode() == dial_twiml(
        ann.destination, 2
    )


def _wait_longer_than_the_longest_wait(sid: str) -> None:
    """The fake clock: the caller's wait began MAX_WAIT seconds earlier than it did."""
    shift = timedelta(seconds=MAX_WAIT + 1)
    WaitingCaller.objects.filter(call_sid=sid).update(
        queued_at=F("queued_at") - shift, wait_until=F("wait_until") - shift
    )
    InboundCall.objects.filter(call_sid=sid).update(queued_at=F("queued_at") - shift)


def test_after_the_longest_wait_the_caller_goes_to_the_overflow_number(
    floor, ping, queue_carrier, settings
):
    settings.TELEPHONY_OVERFLOW_NUMBER = OVERFLOW
    carrier = queue_carrier
    record = _ann_talking_and_bob_rang_out(ping, carrier)
    assert carrier.queue_wait(sid="CA2", queue_time=60).content.decode() != LEAVE_TWIML

    _wait_longer_than_the_longest_wait("CA2")

    assert carrier.queue_wait(sid="CA2", queue_time=121).content.decode() == LEAVE_TWIML
    left = carrier.queue_leave(sid="CA2", result="leave", queue_time=121)
    assert left.content.decode() == dial_twiml(OVERFLOW, 2)
    inbound = InboundCall.objects.get(call_sid="CA2")
    assert (inbound.wait_result, inbound.routed_to) == ("overflow", OVERFLOW)
    assert inbound.wait_seconds == MAX_WAIT + 1
    record.refresh_from_db()
    assert (record.wait_result, record.dequeued_at) == ("overflow", inbound.dequeued_at)
    # No longer waiting: the agents are everyone's again.
    assert not WaitingCaller.objects.waiting(inbound.dequeued_at).exists()


def test_after_the_longest_wait_with_no_overflow_number_the_caller_hears_the_message(
    floor, ping, queue_carrier, settings
):
    carrier = queue_carrier
    _ann_talking_and_bob_rang_out(ping, carrier)
    _wait_longer_than_the_longest_wait("CA2")

    left = carrier.queue_leave(sid="CA2", result="leave", queue_time=121)

    assert left.content.decode() == message_twiml(settings.TELEPHONY_UNAVAILABLE_MESSAGE)
    inbound = InboundCall.objects.get(call_sid="CA2")
    assert (inbound.wait_result, inbound.routed_to) == ("overflow", "message")


def test_a_caller_who_hangs_up_while_waiting_leaves_the_queue(
    floor, ping, queue_carrier, django_capture_on_commit_callbacks
):
    carrier = queue_carrier
    record = _ann_talking_and_bob_rang_out(ping, carrier)

    gone = carrier.queue_leave(sid="CA2", result="hangup", queue_time=30)
    carrier.call_status(sid="CA2", status="completed", duration=70)

    assert gone.status_code == 200
    inbound = InboundCall.objects.get(call_sid="CA2")
    assert (inbound.wait_result, inbound.status) == ("hung_up", "completed")
    record.refresh_from_db()
    assert (record.wait_result, record.dequeued_at) == ("hung_up", inbound.dequeued_at)
    # Ann comes free later: nobody is waiting, so she is free for pings.
    with django_capture_on_commit_callbacks(execute=True):
        carrier.dial_status(sid="CA1", attempt=1, status="completed", duration=60)
    assert RecordingCarrierApi.redirects == []
    assert ping(_ping("+14805550106")).json()["data"]["agentAvailable"] is True


def test_a_caller_who_hangs_up_as_their_agent_is_found_frees_the_agent(
    floor, ping, queue_carrier, django_capture_on_commit_callbacks
):
    carrier = queue_carrier
    _ann_talking_and_bob_rang_out(ping, carrier)
    with django_capture_on_commit_callbacks(execute=True):
        carrier.dial_status(sid="CA1", attempt=1, status="completed", duration=60)
    ann, _ = _agents()
    assert ann.on_call_since is not None

    # The caller's status callback (they hung up) comes before the redirect reached them.
    carrier.call_status(sid="CA2", status="completed", duration=80)

    ann.refresh_from_db()
    assert ann.on_call_since is None
    assert InboundCall.objects.get(call_sid="CA2").wait_result == "hung_up"
    assert ping(_ping("+14805550107")).json()["data"]["agentAvailable"] is True


def test_an_agent_who_comes_available_goes_to_the_waiting_caller(
    floor, ping, queue_carrier, operations_client, django_capture_on_commit_callbacks
):
    carrier = queue_carrier
    _ann_talking_and_bob_rang_out(ping, carrier)
    _, bob = _agents()  # offline since his phone rang out

    with django_capture_on_commit_callbacks(execute=True):
        changed = operations_client.post(
            "/admin/routing/agent/",
            {"action": "set_available", "_selected_action": [bob.pk]},
        )

    assert changed.status_code == 302
    assert RecordingCarrierApi.redirects == [("CA2", f"{BASE}/telephony/queue/leave")]
    connect = carrier.queue_leave(sid="CA2", result=None)
    assert connect.content.decode() == dial_twiml(bob.destination, 2)


def test_agents_with_the_whisper_on_hear_the_vendor_and_state_first(floor, ping, carrier):
    ann, _ = _agents()
    Agent.objects.filter(pk=ann.pk).update(whisper=True)
    first = ping(_ping("+14805550108")).json()["data"]

    answer = carrier.voice(sid="CA9", to=first["transferTarget"], caller="+14805550108")

    inbound = InboundCall.objects.get(call_sid="CA9")
    assert answer.content.decode() == dial_twiml(ann.destination, 1, whisper_call=inbound.pk)
    heard = carrier.whisper(f"/telephony/whisper?call={inbound.pk}", parent="CA9", attempt=1)
    assert heard.content.decode() == (
        '<?xml version="1.0" encoding="UTF-8"?><Response>'
        "<Say>Call from Acme Leads, Arizona.</Say></Response>"
    )


def test_staff_see_a_callers_wait_on_the_inbound_call_page(
    floor, ping, queue_carrier, superuser_client
):
    _ann_talking_and_bob_rang_out(ping, queue_carrier)
    queue_carrier.queue_leave(sid="CA2", result="hangup")
    inbound = InboundCall.objects.get(call_sid="CA2")

    listing = superuser_client.get("/admin/calls/inboundcall/?wait_result=hung_up").content
    page = superuser_client.get(f"/admin/calls/inboundcall/{inbound.pk}/change/").content

    assert b"CA2" in listing
    assert b"hung up while waiting" in page
    assert b"Waited" in page


def test_a_repeated_voice_webhook_for_a_waiting_caller_keeps_them_waiting(
    floor, ping, queue_carrier
):
    _ann_talking_and_bob_rang_out(ping, queue_carrier)
    inbound = InboundCall.objects.get(call_sid="CA2")

    again = queue_carrier.voice(sid="CA2", to=inbound.to_number, caller=inbound.from_number)

    assert again.content.decode() == enqueue_twiml("AZ")
    assert WaitingCaller.objects.filter(call_sid="CA2").count() == 1


def test_an_agent_given_to_a_caller_whose_call_never_leaves_the_queue_is_freed_by_the_sweep(
    floor, ping, queue_carrier, settings
):
    carrier = queue_carrier
    _ann_talking_and_bob_rang_out(ping, carrier)
    carrier.dial_status(sid="CA1", attempt=1, status="completed", duration=60)
    ann, _ = _agents()
    assert ann.on_call_since is not None
    # The carrier went silent: no redirect followed, no wait request, no hang-up.
    assert agent_calls_end_stale(now=ann.on_call_since + timedelta(seconds=30)) == 0
    later = ann.on_call_since + timedelta(seconds=settings.TELEPHONY_DIAL_TIMEOUT_SECONDS + 121)

    assert agent_calls_end_stale(now=later) == 1

    ann.refresh_from_db()
    assert ann.on_call_since is None and ann.held_until is None
    assert WaitingCaller.objects.get(call_sid="CA2").status == "ended"
    # Should the caller still be on the line, their next wait takes them back to the queue.
    assert carrier.queue_wait(sid="CA2", queue_time=40).content.decode() == LEAVE_TWIML
    back = carrier.queue_leave(sid="CA2", result="leave")
    assert back.content.decode() == dial_twiml(ann.destination, 2)


def test_a_wait_the_carrier_never_ended_is_closed_by_the_sweep(floor, ping, queue_carrier):
    _ann_talking_and_bob_rang_out(ping, queue_carrier)
    _wait_longer_than_the_longest_wait("CA2")
    assert waiting_callers_sweep() == 0
    assert InboundCall.objects.get(call_sid="CA2").waiting
    caller = WaitingCaller.objects.get(call_sid="CA2")

    waiting_callers_sweep(now=caller.wait_until + timedelta(seconds=121))

    inbound = InboundCall.objects.get(call_sid="CA2")
    assert (inbound.waiting, inbound.wait_result) == (False, "hung_up")
    assert WaitingCaller.objects.get(call_sid="CA2").status == "ended"


def test_with_every_agent_for_the_state_offline_the_caller_does_not_wait_for_nobody(
    floor, queue_carrier, settings
):
    settings.TELEPHONY_OVERFLOW_NUMBER = OVERFLOW
    Agent.objects.update(status=Agent.Status.OFFLINE)

    answer = queue_carrier.voice(sid="CA5", to=str(floor.numbers[0].number), caller="+14805550111")

    assert answer.content.decode() == dial_twiml(OVERFLOW, 1)
    inbound = InboundCall.objects.get(call_sid="CA5")
    assert (inbound.queued_at, inbound.wait_result) == (None, "")


def test_an_unreachable_carrier_api_leaves_the_caller_to_their_next_wait(
    floor, ping, queue_carrier, settings, django_capture_on_commit_callbacks, caplog
):
    settings.TELEPHONY_CARRIER_API = "telephony_support.UnreachableCarrierApi"
    carrier = queue_carrier
    _ann_talking_and_bob_rang_out(ping, carrier)
    ann, _ = _agents()

    with django_capture_on_commit_callbacks(execute=True):
        ended = carrier.dial_status(sid="CA1", attempt=1, status="completed", duration=60)

    assert ended.content.decode() == HANGUP_TWIML
    assert "Could not take CA2 out of the queue" in caplog.text
    assert carrier.queue_wait(sid="CA2", queue_time=20).content.decode() == LEAVE_TWIML
    left = carrier.queue_leave(sid="CA2", result="leave")
    assert left.content.decode() == dial_twiml(ann.destination, 2)


def test_the_twilio_api_asks_nothing_without_an_account(settings):
    settings.TWILIO_ACCOUNT_SID = ""
    assert TwilioRestApi().call_redirect(call_sid="CA1", url=f"{BASE}/x") is False


def test_the_callers_waiting_are_listed_and_counted_in_the_metrics(floor, ping, queue_carrier):
    _ann_talking_and_bob_rang_out(ping, queue_carrier)

    assert list(InboundCall.objects.waiting().values_list("call_sid", "state")) == [("CA2", "AZ")]
    metrics = queue_carrier.client.get("/metrics").content.decode()
    assert 'callrouting_callers_waiting{state="AZ"} 1.0' in metrics


@pytest.mark.django_db(transaction=True)
def test_beat_gives_an_agent_whose_wrap_up_ran_out_to_the_waiting_caller_on_a_real_worker(
    floor, ping, queue_carrier, celery_stack
):
    carrier = queue_carrier
    _ann_talking_and_bob_rang_out(ping, carrier)
    ann, _ = _agents()
    Agent.objects.filter(pk=ann.pk).update(wrap_up_seconds=30)
    carrier.dial_status(sid="CA1", attempt=1, status="completed", duration=60)
    Agent.objects.filter(pk=ann.pk).update(held_until=F("held_until") - timedelta(seconds=31))

    with celery_stack.running(beat=True):
        caller = celery_stack.wait_for(
            lambda: WaitingCaller.objects.filter(call_sid="CA2", status="assigned").first(),
            timeout=20,
        )

    assert caller is not None and caller.agent_id == ann.pk
    assert RecordingCarrierApi.redirects == [("CA2", f"{BASE}/telephony/queue/leave")]


def test_the_deploy_check_warns_when_waiting_callers_cannot_be_redirected(settings):
    settings.TELEPHONY_QUEUE_MAX_WAIT_SECONDS = 180
    settings.TWILIO_ACCOUNT_SID, settings.TELEPHONY_PUBLIC_BASE_URL = "", BASE
    assert [warning.id for warning in telephony_queue_redirects(None)] == ["calls.W002"]

    settings.TWILIO_ACCOUNT_SID = "AC0123"
    assert telephony_queue_redirects(None) == []
    settings.TWILIO_ACCOUNT_SID, settings.TELEPHONY_QUEUE_MAX_WAIT_SECONDS = "", 0
    assert telephony_queue_redirects(None) == []


def test_a_caller_stops_waiting_when_every_agent_for_the_state_goes_offline(
    floor, ping, queue_carrier, settings
):
    settings.TELEPHONY_OVERFLOW_NUMBER = OVERFLOW
    _ann_talking_and_bob_rang_out(ping, queue_carrier)
    assert queue_carrier.queue_wait(sid="CA2", queue_time=20).content.decode() != LEAVE_TWIML
    # Ann ends her shift during her call (Bob went offline when his phone rang out).
    Agent.objects.update(status=Agent.Status.OFFLINE)
    queue_carrier.dial_status(sid="CA1", attempt=1, status="completed", duration=60)

    assert queue_carrier.queue_wait(sid="CA2", queue_time=30).content.decode() == LEAVE_TWIML
    left = queue_carrier.queue_leave(sid="CA2", result="leave")
    assert left.content.decode() == dial_twiml(OVERFLOW, 2)
    assert InboundCall.objects.get(call_sid="CA2").wait_result == "overflow"
