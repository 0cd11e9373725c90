"""Concurrent arrivals on one transfer number connect its reservation exactly once."""

import threading

import pytest
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from telephony_support import Carrier, agent_with_token

from calls.models import CallRecord, DialAttempt, InboundCall
from routing.models import Agent, Reservation
from routing.services import reservation_connect
from tests.conftest import AZ_PING
from tests.factories import VendorFactory, floor_build


@pytest.fixture
def floor(db):
    """A vendor for AZ and CA whose key AZ_PING sends; three agents licensed for AZ (as many
    as the carrier fixture's tries), three for CA; five transfer numbers."""
    VendorFactory.with_key(authorized_states=["AZ", "CA"], key=AZ_PING["vendorKey"])
    return floor_build(agents={"AZ": 3, "CA": 3}, numbers=5)


ARRIVALS = 8


def _arrive_together(count, arrive):
    barrier = threading.Barrier(count)
    errors = []

    def run(index):
        try:
            barrier.wait(timeout=10)
            arrive(index)
        except Exception as exc:  # surfaced in the main thread below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_calls_on_one_number_never_connect_its_reservation_twice(
    floor, ping, carrier, settings
):
    for round_number in range(3):
        first = ping({**AZ_PING, "phoneNumber": f"+1480555010{round_number}"}).json()["data"]
        record = CallRecord.objects.get(request_id=first["requestId"])
        statuses = []

        def arrive(
            index, target=first["transferTarget"], round_number=round_number, statuses=statuses
        ):
            answer = Carrier(Client()).voice(sid=f"CA6{round_number}{index:02d}", to=target)
            statuses.append(answer.status_code)

        _arrive_together(ARRIVALS, arrive)

        assert statuses == [200] * ARRIVALS
        calls = InboundCall.objects.filter(to_number=first["transferTarget"])
        calls = calls.filter(call_sid__startswith=f"CA6{round_number}")
        assert calls.count() == ARRIVALS
        assert calls.filter(match="matched").count() == 1
        assert calls.filter(match="no_reservation").count() == ARRIVALS - 1
        reserved_attempts = DialAttempt.objects.filter(
            agent_id=record.agent_id, inbound_call__in=calls
        )
        assert reserved_attempts.count() == 1
        # No agent was dialled for two of these calls at once.
        agents = list(
            DialAttempt.objects.filter(inbound_call__in=calls, agent__isnull=False).values_list(
                "agent_id", flat=True
            )
        )
        assert len(agents) == len(set(agents))
        assert Reservation.objects.get(pk=record.reservation_id).status == "connected"
        record.refresh_from_db()
        assert record.outcome == "connected"
        # Free everyone for the next round.
        Agent.objects.update(on_call_since=None, held_until=None)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_without_the_locked_live_condition_two_arrivals_both_connect(floor, ping):
    """The control: read the live reservation, then mark it connected by id. Two arrivals that
    both read before either writes both "connect" it; reservation_connect's locked query with the
    live condition in it is what the test above shows connecting once."""
    ping(AZ_PING)
    number = Reservation.objects.get().transfer_number
    connected = []
    both_read = threading.Barrier(2)

    def naive_connect():
        with transaction.atomic():
            live = Reservation.objects.filter(
                transfer_number=number, status="active", expires_at__gt=timezone.now()
            ).first()
            both_read.wait(timeout=10)
            if live is not None:
                updated = Reservation.objects.filter(pk=live.pk).update(status="connected")
                connected.append(updated)

    _arrive_together(2, lambda index: naive_connect())

    assert connected == [1, 1]  # one reservation, connected twice


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_connect_service_connects_a_live_reservation_once_however_often_it_is_called(
    floor, ping
):
    ping(AZ_PING)
    number = Reservation.objects.get().transfer_number
    results = []

    def arrive(index):
        with transaction.atomic():
            results.append(reservation_connect(transfer_number=number, now=timezone.now()))

    _arrive_together(ARRIVALS, arrive)

    assert sum(result is not None for result in results) == 1
    assert Reservation.objects.get().status == "connected"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_call_arriving_as_its_agent_goes_offline_is_either_connected_or_sent_elsewhere(
    floor, ping, api
):
    for round_number in range(5):
        first = ping({**AZ_PING, "phoneNumber": f"+1480555020{round_number}"}).json()["data"]
        record = CallRecord.objects.get(request_id=first["requestId"])
        agent = record.agent
        if agent.user_id is None:
            agent_with_token(agent.name)
        token = Token.objects.get(user__agent=agent).key
        answers = {}

        sid = f"CA7{round_number}"

        def arrive(
            index,
            target=first["transferTarget"],
            answers=answers,
            agent=agent,
            token=token,
            sid=sid,
        ):
            if index == 0:
                answers["call"] = Carrier(Client()).voice(sid=sid, to=target)
            else:
                answers["offline"] = APIClient().post(
                    f"/api/v1/agents/{agent.pk}/status",
                    {"status": "offline"},
                    format="json",
                    HTTP_AUTHORIZATION=f"Token {token}",
                )

        _arrive_together(2, arrive)

        assert (answers["call"].status_code, answers["offline"].status_code) == (200, 200)
        inbound = InboundCall.objects.get(call_sid=sid)
        reservation = Reservation.objects.get(pk=record.reservation_id)
        released = answers["offline"].json()["data"]["releasedReservations"]
        if inbound.match == "matched":
            assert (reservation.status, released) == ("connected", 0)
        else:
            # Its hold was released first: the call is late, still linked to its record.
            assert (inbound.match, inbound.call_record_id, reservation.status, released) == (
                "late",
                record.pk,
                "released",
                1,
            )
            assert not DialAttempt.objects.filter(inbound_call=inbound, agent=agent).exists()
        Agent.objects.update(status="available", on_call_since=None, held_until=None)
