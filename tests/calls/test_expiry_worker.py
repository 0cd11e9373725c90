"""Expiry on a real Celery worker: on time, caught up by the sweep, and harmless when repeated."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from calls.models import CallRecord
from calls.tasks import expire_due_reservations, expire_reservation
from routing.models import Agent, Reservation, TransferNumber
from tests.conftest import AZ_PING
from tests.factories import VendorFactory, floor_build

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def floor(db):
    """A vendor for AZ whose key AZ_PING sends, three agents licensed for AZ, five numbers."""
    VendorFactory.with_key(authorized_states=["AZ"], key=AZ_PING["vendorKey"])
    return floor_build(agents={"AZ": 3}, numbers=5)


@pytest.fixture(autouse=True)
def expiry_tasks(settings):
    """These tests are about the task per reservation, which is off by default."""
    settings.RESERVATION_EXPIRY_TASKS = True


# The guide's example ping.


def _expired_reservation():
    reservation = Reservation.objects.get()
    record = CallRecord.objects.get(reservation=reservation)
    if reservation.status == "expired" and record.outcome == "expired":
        return reservation, timezone.now()
    return None


def _snapshot():
    return {
        "reservations": list(Reservation.objects.values().order_by("pk")),
        "call_records": list(CallRecord.objects.values().order_by("pk")),
        "agents": list(Agent.objects.values().order_by("pk")),
        "numbers": list(TransferNumber.objects.values().order_by("pk")),
    }


def test_it_expires_a_reservation_and_its_call_record_within_5_seconds_of_the_ttl(
    floor, ping, settings, celery_stack
):
    settings.RESERVATION_TTL_SECONDS = 2
    with celery_stack.running(beat=True):
        answer = ping(AZ_PING)
        assert answer.status_code == 200
        assert answer.json()["data"]["ttlSeconds"] == 2
        reservation = Reservation.objects.get()
        assert reservation.status == "active"
        assert CallRecord.objects.get().outcome == "reserved"

        expired = celery_stack.wait_for(_expired_reservation, timeout=2 + 5 + 1)

    assert expired is not None, "the reservation was not expired"
    reservation, seen_at = expired
    assert seen_at - reservation.expires_at <= timedelta(seconds=5)
    assert reservation.ended_at == reservation.expires_at


def test_the_sweep_expires_a_reservation_whose_ttl_passed_while_no_worker_ran(
    floor, ping, settings, celery_stack
):
    settings.RESERVATION_TTL_SECONDS = 1
    assert ping(AZ_PING).status_code == 200
    reservation = Reservation.objects.get()
    time.sleep(max(0, (reservation.expires_at - timezone.now()).total_seconds()) + 0.5)
    reservation.refresh_from_db()
    assert reservation.status == "active"
    assert CallRecord.objects.get().outcome == "reserved"
    # The task enqueued for the moment of expiry is lost, as with a broker restart.
    assert celery_stack.purge() == 1

    with celery_stack.running(beat=True):
        started_at = timezone.now()
        expired = celery_stack.wait_for(_expired_reservation, timeout=5)

    assert expired is not None, "the sweep did not expire the reservation"
    reservation, seen_at = expired
    assert seen_at - started_at <= timedelta(seconds=5)
    assert reservation.ended_at == reservation.expires_at


def test_running_the_expiry_task_twice_changes_nothing_the_second_time(
    floor, ping, settings, celery_stack
):
    settings.RESERVATION_TTL_SECONDS = 1
    assert ping(AZ_PING).status_code == 200
    reservation = Reservation.objects.get()
    time.sleep(max(0, (reservation.expires_at - timezone.now()).total_seconds()) + 0.2)
    celery_stack.purge()

    with celery_stack.running(beat=False):
        celery_stack.run(expire_reservation, reservation.pk)
        assert _expired_reservation() is not None
        after_first = _snapshot()

        celery_stack.run(expire_reservation, reservation.pk)
        celery_stack.run(expire_due_reservations)

        assert _snapshot() == after_first


def test_the_expiry_task_changes_nothing_after_the_call_arrived(
    floor, ping, settings, celery_stack
):
    settings.RESERVATION_TTL_SECONDS = 1
    assert ping(AZ_PING).status_code == 200
    reservation = Reservation.objects.get()
    # The call arrives inside the TTL, as the telephony webhook records it.
    connected_at = timezone.now()
    Reservation.objects.filter(pk=reservation.pk).update(status="connected", ended_at=connected_at)
    CallRecord.objects.filter(reservation=reservation).update(
        outcome="connected", connected_at=connected_at
    )
    time.sleep(max(0, (reservation.expires_at - timezone.now()).total_seconds()) + 0.2)
    celery_stack.purge()
    before = _snapshot()

    with celery_stack.running(beat=False):
        celery_stack.run(expire_reservation, reservation.pk)
        celery_stack.run(expire_due_reservations)

        assert _snapshot() == before
    reservation.refresh_from_db()
    assert reservation.status == "connected"
    assert CallRecord.objects.get().outcome == "connected"
