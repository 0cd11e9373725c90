"""No agent stays on a call forever: the sweep frees those whose call no callback will ever end.

The caller's status callback can reach us before the call's own webhook has committed: it finds
no call, and the carrier never sends it again. The sweep runs on a fake clock here (`now=`).
"""

import logging
import uuid
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.utils import timezone
from telephony_support import HANGUP_TWIML, dial_twiml, record_of

from calls.models import CallRecord, DialAttempt, InboundCall
from calls.ping.service import vendor_ping
from calls.tasks import end_stale_agent_calls
from calls.telephony.service import agent_calls_end_stale
from routing.models import Agent
from routing.services import agent_call_end
from tests.conftest import AZ_PING
from tests.factories import AgentFactory, VendorFactory, floor_build


@pytest.fixture
def floor(db):
    """A vendor for AZ whose key AZ_PING sends, three agents licensed for AZ, five numbers."""
    VendorFactory.with_key(authorized_states=["AZ"], key=AZ_PING["vendorKey"])
    return floor_build(agents={"AZ": 3}, numbers=5)


def _agent_on_a_call(ping, carrier, sid: str, leg: str | None = None):
    """A ping, its call arriving as `sid` and ringing the reserved agent, and (if given) the
    leg's status; the ping's answer and the agent as they are now."""
    first = ping(AZ_PING).json()["data"]
    carrier.voice(sid=sid, to=first["transferTarget"])
    if leg is not None:
        carrier.leg_status(parent=sid, attempt=1, status=leg)
    agent_id = record_of(first).agent_id
    assert agent_id is not None, first
    return first, Agent.objects.get(pk=agent_id)


def _longest_call_after(agent, settings):
    return agent.on_call_since + timedelta(seconds=settings.TELEPHONY_MAX_CALL_SECONDS)


def _free_az_agents(now):
    ping = {**AZ_PING, "phoneNumber": "+14805550123"}
    return vendor_ping(payload=ping, request_id=str(uuid.uuid4()), now=now).agent_count


def _snapshot():
    return {
        "agents": list(Agent.objects.values().order_by("pk")),
        "inbound_calls": list(InboundCall.objects.values().order_by("pk")),
        "attempts": list(DialAttempt.objects.values().order_by("pk")),
        "call_records": list(CallRecord.objects.values().order_by("pk")),
    }


def _ring_by(dial, settings):
    """When a leg the carrier dialled would have rung (and rung out) by, with time to spare."""
    return dial.started_at + timedelta(seconds=settings.TELEPHONY_DIAL_TIMEOUT_SECONDS + 120)


def test_it_frees_an_agent_whose_callers_hang_up_was_heard_before_the_call_was_recorded(
    floor, ping, carrier, settings, caplog
):
    first = ping(AZ_PING).json()["data"]
    reserved = record_of(first).agent
    # The caller hangs up while the voice webhook is still running: its status finds no call.
    assert carrier.call_status(sid="CA800", status="completed", duration=3).status_code == 200
    answer = carrier.voice(sid="CA800", to=first["transferTarget"])
    assert answer.content.decode() == dial_twiml(reserved.destination, 1)
    reserved.refresh_from_db()
    # The carrier never dials the agent for a caller who is gone: no leg callback ever comes.
    ring_by = _ring_by(DialAttempt.objects.get(inbound_call__call_sid="CA800"), settings)
    assert agent_calls_end_stale(now=ring_by) == 0
    assert Agent.objects.get(pk=reserved.pk).on_call_since == reserved.on_call_since
    later = ring_by + timedelta(seconds=1)

    with caplog.at_level(logging.WARNING, logger="calls.telephony.service"):
        assert agent_calls_end_stale(now=later) == 1

    freed = Agent.objects.get(pk=reserved.pk)
    assert (freed.on_call_since, freed.idle_since) == (None, reserved.idle_since)
    assert Agent.objects.free(later).filter(pk=reserved.pk).exists()
    assert _free_az_agents(later) == len(floor.agents["AZ"])
    assert DialAttempt.objects.get(inbound_call__call_sid="CA800").status == "canceled"
    inbound = InboundCall.objects.get(call_sid="CA800")
    assert (inbound.ended_at, inbound.duration_seconds) == (later, None)
    record = record_of(first)
    assert (record.outcome, record.call_status, record.duration_seconds) == (
        "completed",
        "canceled",
        0,
    )
    assert record.ended_at == later
    assert f"Agent {reserved.pk} was still on a call" in caplog.text
    assert "CA800" in caplog.text


def test_it_leaves_an_agent_whose_phone_rang_on_the_call_until_the_longest_call(
    floor, ping, carrier, settings
):
    _, reserved = _agent_on_a_call(ping, carrier, "CA807", leg="ringing")
    before = _snapshot()

    ring_by = _ring_by(DialAttempt.objects.get(inbound_call__call_sid="CA807"), settings)
    assert agent_calls_end_stale(now=ring_by + timedelta(seconds=1)) == 0
    longest = _longest_call_after(reserved, settings)
    assert agent_calls_end_stale(now=longest - timedelta(seconds=1)) == 0

    assert _snapshot() == before
    later = longest + timedelta(seconds=1)
    assert agent_calls_end_stale(now=later) == 1
    assert DialAttempt.objects.get(inbound_call__call_sid="CA807").status == "canceled"


def test_it_leaves_an_agent_talking_on_a_call_alone(floor, ping, carrier):
    first, _ = _agent_on_a_call(ping, carrier, "CA801", leg="in-progress")
    before = _snapshot()

    assert agent_calls_end_stale(now=timezone.now() + timedelta(hours=1)) == 0

    assert _snapshot() == before
    agent = record_of(first).agent
    assert agent.on_call_since is not None
    assert DialAttempt.objects.get(inbound_call__call_sid="CA801").status == "answered"
    assert InboundCall.objects.get(call_sid="CA801").ended_at is None


def test_it_frees_an_agent_talking_past_the_longest_call_with_the_talk_time_unknown(
    floor, ping, carrier, settings
):
    first, reserved = _agent_on_a_call(ping, carrier, "CA802", leg="in-progress")
    later = _longest_call_after(reserved, settings) + timedelta(seconds=1)

    assert agent_calls_end_stale(now=later) == 1

    freed = Agent.objects.get(pk=reserved.pk)
    assert freed.on_call_since is None
    assert freed.last_call_ended_at == freed.idle_since == later
    assert freed.held_until == later + timedelta(seconds=freed.wrap_up_seconds)
    assert DialAttempt.objects.get(inbound_call__call_sid="CA802").status == "completed"
    record = record_of(first)
    assert (record.outcome, record.call_status, record.duration_seconds) == (
        "completed",
        "completed",
        None,
    )
    # Should the Dial's action still arrive, it says how long they talked.
    late = carrier.dial_status(sid="CA802", attempt=1, status="completed", duration=1800)
    assert late.content.decode() == HANGUP_TWIML
    assert record_of(first).duration_seconds == 1800


def test_it_frees_at_once_an_agent_whose_call_ended_without_freeing_them(floor, ping, carrier):
    first = ping(AZ_PING).json()["data"]
    reserved = record_of(first).agent
    carrier.voice(sid="CA803", to=first["transferTarget"])
    carrier.dial_status(sid="CA803", attempt=1, status="completed", duration=30)
    carrier.call_status(sid="CA803", status="completed", duration=35)
    stuck_since = timezone.now()
    Agent.objects.filter(pk=reserved.pk).update(on_call_since=stuck_since)
    calls_before = {key: value for key, value in _snapshot().items() if key != "agents"}
    now = stuck_since + timedelta(seconds=5)

    assert agent_calls_end_stale(now=now) == 1

    freed = Agent.objects.get(pk=reserved.pk)
    assert freed.on_call_since is None
    assert freed.held_until == now + timedelta(seconds=freed.wrap_up_seconds)  # they had talked
    assert {key: value for key, value in _snapshot().items() if key != "agents"} == calls_before


def test_running_it_twice_changes_nothing_the_second_time(floor, ping, carrier, settings):
    _, reserved = _agent_on_a_call(ping, carrier, "CA804")
    later = _longest_call_after(reserved, settings) + timedelta(seconds=1)
    assert agent_calls_end_stale(now=later) == 1
    after_first = _snapshot()

    assert agent_calls_end_stale(now=later + timedelta(minutes=1)) == 0

    assert _snapshot() == after_first


def test_it_ends_only_the_call_it_saw_never_one_the_agent_took_since(db):
    agent = AgentFactory(licensed_states=["AZ"])
    now = timezone.now()
    Agent.objects.filter(pk=agent.pk).update(on_call_since=now)

    ended = agent_call_end(
        agent_id=agent.pk, now=now, talked=False, on_call_since=now - timedelta(hours=5)
    )

    assert ended is False
    assert Agent.objects.get(pk=agent.pk).on_call_since == now


def test_beat_runs_the_stale_call_sweep_every_minute():
    entry = django_settings.CELERY_BEAT_SCHEDULE["end-stale-agent-calls"]

    assert entry["task"] == end_stale_agent_calls.name == "calls.end_stale_agent_calls"
    assert entry["schedule"] == 60.0


@pytest.mark.django_db(transaction=True)
def test_the_sweep_task_frees_an_agent_whose_call_already_ended_on_a_real_worker(
    floor, ping, carrier, celery_stack
):
    first = ping(AZ_PING).json()["data"]
    reserved = record_of(first).agent
    carrier.voice(sid="CA805", to=first["transferTarget"])
    carrier.call_status(sid="CA805", status="completed", duration=4)
    Agent.objects.filter(pk=reserved.pk).update(on_call_since=timezone.now())

    with celery_stack.running(beat=False):
        celery_stack.run(end_stale_agent_calls)
        assert Agent.objects.get(pk=reserved.pk).on_call_since is None
        after_first = _snapshot()

        celery_stack.run(end_stale_agent_calls)

        assert _snapshot() == after_first


def test_a_call_the_sweep_ended_says_its_end_went_unheard_until_the_carrier_reports_it(
    floor, ping, carrier, settings
):
    first, reserved = _agent_on_a_call(ping, carrier, "CA806", leg="in-progress")
    later = _longest_call_after(reserved, settings) + timedelta(seconds=1)
    assert agent_calls_end_stale(now=later) == 1
    inbound = InboundCall.objects.get(call_sid="CA806")
    assert (inbound.status, inbound.ended_at, inbound.duration_seconds) == ("unheard", later, None)
    # An earlier status arriving now is old news.
    carrier.call_status(sid="CA806", status="in-progress")
    assert InboundCall.objects.get(call_sid="CA806").status == "unheard"
    settled = {key: value for key, value in _snapshot().items() if key != "inbound_calls"}

    carrier.call_status(sid="CA806", status="completed", duration=14_500)

    inbound = InboundCall.objects.get(call_sid="CA806")
    assert (inbound.status, inbound.ended_at, inbound.duration_seconds) == (
        "completed",
        later,
        14_500,
    )
    # Not settled twice: the attempt, the record and the agent stay as the sweep left them.
    assert {key: value for key, value in _snapshot().items() if key != "inbound_calls"} == settled
    record = record_of(first)
    assert (record.outcome, record.call_status, record.duration_seconds) == (
        "completed",
        "completed",
        None,
    )

    carrier.call_status(sid="CA806", status="canceled", duration=3)

    inbound = InboundCall.objects.get(call_sid="CA806")
    assert (inbound.status, inbound.duration_seconds) == ("completed", 14_500)
