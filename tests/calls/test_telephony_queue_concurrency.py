"""An agent who comes free while a caller waits goes to that caller, never also to a ping that
arrives at the same moment: on PostgreSQL, with the freeing and the ping in threads of their own.
"""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import F
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient
from telephony_support import Carrier, enqueue_twiml

from calls.models import InboundCall
from calls.telephony.queue import waiting_callers_sweep
from routing.allocation import agent_is_idle
from routing.models import Agent, Reservation, WaitingCaller
from tests.conftest import PING_URL
from tests.factories import VendorFactory, floor_build

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

KEY = "5b2f8d41-93ce-4a07-8e1d-6c4a2b9f0e73"
ROUNDS = 6


@pytest.fixture
def floor(db):
    """A vendor for AZ with KEY, one agent licensed for AZ, and more numbers than rounds."""
    VendorFactory.with_key(authorized_states=["AZ"], key=KEY)
    return floor_build(agents={"AZ": 1}, numbers=2 * ROUNDS + 2)


@pytest.fixture
def queue_on(carrier, settings):
    settings.TELEPHONY_QUEUE_MAX_WAIT_SECONDS = 120
    return carrier


def _ping(phone: str):
    return APIClient().post(
        PING_URL,
        {"vendorKey": KEY, "phoneNumber": phone, "stateCode": "AZ"},
        format="json",
    )


def _at_once(*work) -> None:
    barrier = threading.Barrier(len(work))
    errors = []

    def run(job):
        try:
            barrier.wait(timeout=10)
            job()
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(job,)) for job in work]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []


def _agent_on_a_call_and_a_caller_waiting(carrier, floor, round_: int) -> tuple[str, str]:
    """The one agent talks on a call; a second caller from Arizona waits. Their call ids."""
    talking, waiting = f"CA-T{round_}", f"CA-W{round_}"
    first = _ping(f"+1480555{round_:04d}").json()["data"]
    assert first["agentAvailable"] is True
    carrier.voice(sid=talking, to=first["transferTarget"], caller=f"+1480555{round_:04d}")
    carrier.leg_status(parent=talking, attempt=1, status="in-progress")
    unreserved = str(floor.numbers[-1 - round_].number)
    answer = carrier.voice(sid=waiting, to=unreserved, caller=f"+1602555{round_:04d}")
    assert answer.content.decode() == enqueue_twiml("AZ")
    return talking, waiting


def _assert_the_agent_went_to_the_caller_alone(agent: Agent, waiting: str, pinged: dict) -> None:
    caller = WaitingCaller.objects.get(call_sid=waiting)
    assert (caller.status, caller.agent_id) == ("assigned", agent.pk)
    assert pinged["agentAvailable"] is False
    assert not Reservation.objects.filter(agent=agent, status="active").exists()


def _end_round(carrier, waiting: str) -> None:
    """The waiting caller hangs up; the agent is free again for the next round."""
    carrier.call_status(sid=waiting, status="completed", duration=30)
    Agent.objects.update(on_call_since=None, held_until=None, wrap_up_seconds=0)
    assert not InboundCall.objects.get(call_sid=waiting).waiting


def test_an_agent_whose_call_ends_as_a_ping_arrives_goes_to_the_waiting_caller(floor, queue_on):
    agent = floor.agents["AZ"][0]
    for round_ in range(ROUNDS):
        talking, waiting = _agent_on_a_call_and_a_caller_waiting(queue_on, floor, round_)
        answers: dict = {}

        def call_ends(talking=talking):
            Carrier(Client()).dial_status(sid=talking, attempt=1, status="completed", duration=9)

        def ping(answers=answers, round_=round_):
            answers["ping"] = _ping(f"+1520555{round_:04d}").json()["data"]

        _at_once(call_ends, ping)

        _assert_the_agent_went_to_the_caller_alone(agent, waiting, answers["ping"])
        _end_round(queue_on, waiting)


def test_an_agent_whose_wrap_up_runs_out_as_a_ping_arrives_goes_to_the_waiting_caller(
    floor, queue_on
):
    agent = floor.agents["AZ"][0]
    for round_ in range(ROUNDS):
        Agent.objects.update(wrap_up_seconds=30)
        talking, waiting = _agent_on_a_call_and_a_caller_waiting(queue_on, floor, round_)
        queue_on.dial_status(sid=talking, attempt=1, status="completed", duration=9)
        # Time frees the agent: the wrap-up is over, and nothing but the sweep notices.
        Agent.objects.update(held_until=F("held_until") - timedelta(seconds=31))
        answers: dict = {}

        def ping(answers=answers, round_=round_):
            answers["ping"] = _ping(f"+1520555{round_:04d}").json()["data"]

        def sweep(round_=round_):
            # Every other round the sweep comes a moment after the ping (beat runs once a
            # second), so a ping that could take the agent would.
            time.sleep(0.2 * (round_ % 2))
            waiting_callers_sweep()

        _at_once(sweep, ping)

        _assert_the_agent_went_to_the_caller_alone(agent, waiting, answers["ping"])
        _end_round(queue_on, waiting)


def test_without_the_queues_hold_a_ping_takes_the_agent_time_freed_from_the_waiting_caller(
    floor, queue_on
):
    """The control: by the rule allocation used before the queue (idle is free), the agent
    whose wrap-up ran out is free for a ping while the caller waits, and the sweep that would
    give them to the caller may come after the ping. agent_is_free holds them back."""
    agent = floor.agents["AZ"][0]
    Agent.objects.update(wrap_up_seconds=30)
    talking, waiting = _agent_on_a_call_and_a_caller_waiting(queue_on, floor, 0)
    queue_on.dial_status(sid=talking, attempt=1, status="completed", duration=9)
    Agent.objects.update(held_until=F("held_until") - timedelta(seconds=31))
    now = timezone.now()

    assert Agent.objects.filter(agent_is_idle(now)).filter(pk=agent.pk).exists()
    assert not Agent.objects.free(now).filter(pk=agent.pk).exists()
    assert WaitingCaller.objects.waiting(now).filter(call_sid=waiting).exists()
