"""Each allocation rule has two forms, the ORM's and the one-statement ping's SQL: on rows in every
state the rule tells apart, both pick the same rows, at a given moment and by the database's
clock. PostgreSQL (the SQL form runs only there)."""

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from routing.allocation import (
    AGENT_IS_FREE,
    NUMBER_IS_FREE,
    RESERVATION_HAS_LAPSED,
    RESERVATION_IS_LIVE,
)
from routing.models import Agent, AgentLicense, Reservation, TransferNumber, WaitingCaller
from routing.services import database_now
from vendors.models import Vendor

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

NOW = timezone.now().replace(microsecond=0)
HOUR = timedelta(hours=1)


def picked_by_sql(table: str, alias: str, condition: str, now) -> set[int]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {alias}.id FROM {table} {alias} WHERE {condition}", {"now": now})
        return {row[0] for row in cursor.fetchall()}


def agents_in_every_state() -> dict[str, Agent]:
    """Agents free and not, by name; relative to NOW, or an hour off it (for the database's
    clock, which moves on)."""
    states: dict[str, dict[str, Any]] = {
        "never held": {},
        "held": {"held_until": NOW + HOUR},
        "hold ran out": {"held_until": NOW - HOUR},
        "hold ends at this moment": {"held_until": NOW},
        "in wrap-up": {"held_until": NOW + HOUR, "last_call_ended_at": NOW - timedelta(seconds=5)},
        "wrap-up over": {"held_until": NOW - HOUR, "last_call_ended_at": NOW - 2 * HOUR},
        "on a call": {"on_call_since": NOW - HOUR},
        "on a call, hold ran out": {"on_call_since": NOW - HOUR, "held_until": NOW - HOUR},
        "offline": {"status": Agent.Status.OFFLINE},
        "offline, hold ran out": {"status": Agent.Status.OFFLINE, "held_until": NOW - HOUR},
    }
    return {
        name: Agent.objects.create(name=name, destination="+14805550000", **fields)
        for name, fields in states.items()
    }


def test_the_free_agent_rule_picks_the_same_agents_in_sql_and_in_the_orm():
    agents = agents_in_every_state()
    names = {agent.pk: name for name, agent in agents.items()}

    for now in (NOW, None):  # None: the statement's default, the database's clock
        by_sql = picked_by_sql("routing_agent", "a", AGENT_IS_FREE, now)
        by_orm = set(Agent.objects.free(now or database_now()).values_list("id", flat=True))
        assert {names[id] for id in by_sql} == {names[id] for id in by_orm}

    assert {names[id] for id in picked_by_sql("routing_agent", "a", AGENT_IS_FREE, NOW)} == {
        "never held",
        "hold ran out",
        "hold ends at this moment",
        "wrap-up over",
    }


def test_the_free_number_rule_picks_the_same_numbers_in_sql_and_in_the_orm():
    states = {
        "+14805550101": {},
        "+14805550102": {"held_until": NOW + HOUR},
        "+14805550103": {"held_until": NOW - HOUR},
        "+14805550104": {"held_until": NOW},
        "+14805550105": {"is_active": False},
        "+14805550106": {"is_active": False, "held_until": NOW - HOUR},
    }
    ids = {
        TransferNumber.objects.create(number=number, **fields).pk: number
        for number, fields in states.items()
    }

    for now in (NOW, None):
        by_sql = picked_by_sql("routing_transfernumber", "t", NUMBER_IS_FREE, now)
        by_orm = set(
            TransferNumber.objects.free(now or database_now()).values_list("id", flat=True)
        )
        assert by_sql == by_orm

    assert {
        ids[id] for id in picked_by_sql("routing_transfernumber", "t", NUMBER_IS_FREE, NOW)
    } == {
        "+14805550101",
        "+14805550103",
        "+14805550104",
    }


def test_the_live_and_lapsed_reservation_rules_agree_in_sql_the_orm_and_python():
    vendor = Vendor.objects.create(name="Rules Vendor")
    states = {
        "active, within its ttl": ("active", NOW + HOUR),
        "active, ends at this moment": ("active", NOW),
        "active, past its ttl": ("active", NOW - HOUR),
        "connected": ("connected", NOW + HOUR),
        "released": ("released", NOW + HOUR),
        "expired": ("expired", NOW - HOUR),
    }
    names = {}
    for index, (name, (status, expires_at)) in enumerate(states.items()):
        reservation = Reservation.objects.create(
            vendor=vendor,
            agent=Agent.objects.create(name=name, destination="+14805550000"),
            transfer_number=TransferNumber.objects.create(number=f"+1480555020{index}"),
            phone_number=f"+1602555010{index}",
            state="AZ",
            agent_count=1,
            ttl_seconds=60,
            created_at=expires_at - timedelta(seconds=60),
            expires_at=expires_at,
            status=status,
        )
        names[reservation.pk] = name

    def named(ids) -> set[str]:
        return {names[id] for id in ids}

    for now in (NOW, None):
        orm_now = now or database_now()
        live = named(picked_by_sql("routing_reservation", "r", RESERVATION_IS_LIVE, now))
        lapsed = named(picked_by_sql("routing_reservation", "r", RESERVATION_HAS_LAPSED, now))
        assert live == named(Reservation.objects.live(orm_now).values_list("id", flat=True))
        assert lapsed == named(Reservation.objects.lapsed(orm_now).values_list("id", flat=True))
        assert live == {names[row.pk] for row in Reservation.objects.all() if row.is_live(orm_now)}

    assert named(picked_by_sql("routing_reservation", "r", RESERVATION_IS_LIVE, NOW)) == {
        "active, within its ttl"
    }
    assert named(picked_by_sql("routing_reservation", "r", RESERVATION_HAS_LAPSED, NOW)) == {
        "active, ends at this moment",
        "active, past its ttl",
    }


def test_the_free_agent_rule_holds_back_idle_agents_for_callers_waiting_in_their_states():
    def agent(name, *states, **fields):
        made = Agent.objects.create(name=name, destination="+14805550000", **fields)
        for state in states:
            AgentLicense.objects.create(agent=made, state=state)
        return made

    agents = [
        agent("AZ, idle", "AZ"),
        agent("AZ and TX, idle", "AZ", "TX"),
        agent("CA, idle", "CA"),
        agent("TX, idle", "TX"),
        agent("AZ, on a call", "AZ", on_call_since=NOW - HOUR),
        agent("no licence, idle"),
    ]
    names = {made.pk: made.name for made in agents}

    def waiting(call_sid, state, **fields):
        values = {"queued_at": NOW - HOUR, "wait_until": NOW + HOUR} | fields
        WaitingCaller.objects.create(call_sid=call_sid, state=state, **values)

    waiting("CA-AZ", "AZ")  # holds back every idle agent licensed for AZ
    waiting("CA-CA", "CA", wait_until=NOW - timedelta(seconds=1))  # wait over: holds no one
    waiting("CA-TX", "TX", status=WaitingCaller.Status.ENDED)  # out of the queue
    waiting("CA-TX2", "TX", status=WaitingCaller.Status.ASSIGNED)  # has their agent

    by_sql = picked_by_sql("routing_agent", "a", AGENT_IS_FREE, NOW)
    by_orm = set(Agent.objects.free(NOW).values_list("id", flat=True))
    assert {names[id] for id in by_sql} == {names[id] for id in by_orm}
    assert {names[id] for id in by_sql} == {"CA, idle", "TX, idle", "no licence, idle"}
    # Nobody waiting: idle is free.
    WaitingCaller.objects.all().delete()
    assert len(picked_by_sql("routing_agent", "a", AGENT_IS_FREE, NOW)) == 5
