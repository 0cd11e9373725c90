"""The expiry task is queued after the ping commits, and a broker that is down fails no ping."""

import logging
import socket
import time

import pytest

from calls.models import CallRecord
from config.celery import app
from routing.models import Reservation
from tests.conftest import AZ_PING
from tests.factories import VendorFactory, floor_build

pytestmark = pytest.mark.django_db


@pytest.fixture
def floor(db):
    """A vendor for AZ whose key AZ_PING sends, three agents licensed for AZ, five numbers."""
    VendorFactory.with_key(authorized_states=["AZ"], key=AZ_PING["vendorKey"])
    return floor_build(agents={"AZ": 3}, numbers=5)


@pytest.fixture(autouse=True)
def expiry_tasks(settings):
    """These tests are about the task per reservation, which is off by default."""
    settings.RESERVATION_EXPIRY_TASKS = True


@pytest.fixture
def broker_down(monkeypatch):
    """Point Celery at a port nothing listens on, with fresh connection pools."""
    # Celery reads CELERY_BROKER_URL from the environment before its settings.
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setattr(app, "_pool", None)
    monkeypatch.setattr(app.amqp, "_producer_pool", None)


@pytest.fixture
def broker_hung(monkeypatch):
    """A Redis that accepts connections and never answers (hung, or half dead)."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=16)
    monkeypatch.setenv("CELERY_BROKER_URL", f"redis://127.0.0.1:{listener.getsockname()[1]}/0")
    monkeypatch.setattr(app, "_pool", None)
    monkeypatch.setattr(app.amqp, "_producer_pool", None)
    yield
    listener.close()


def test_a_ping_answers_promptly_when_the_broker_never_answers(
    floor, ping, broker_hung, django_capture_on_commit_callbacks
):
    # Without socket timeouts, queuing the expiry task waited on the silent socket for ever.
    started = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True):
        answer = ping(AZ_PING)

    assert answer.status_code == 200
    assert answer.json()["data"]["agentAvailable"] is True
    assert time.monotonic() - started < 10
    assert Reservation.objects.get().status == "active"


def test_a_ping_answers_and_reserves_when_the_broker_is_down(
    floor, ping, broker_down, caplog, django_capture_on_commit_callbacks
):
    caplog.set_level(logging.WARNING, logger="calls.ping.service")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        answer = ping(AZ_PING)

    assert len(callbacks) == 1
    assert answer.status_code == 200
    data = answer.json()["data"]
    assert data["agentAvailable"] is True
    assert data["transferTarget"] == str(floor.numbers[0].number)
    reservation = Reservation.objects.get()
    assert reservation.status == "active"
    assert CallRecord.objects.get().outcome == "reserved"
    assert [
        record.getMessage() for record in caplog.records if record.levelno == logging.WARNING
    ] == [f"Could not enqueue the expiry of reservation {reservation.pk}; the sweep will expire it"]


def test_nothing_is_queued_for_a_ping_that_finds_no_agent(
    floor, ping, django_capture_on_commit_callbacks
):
    for phone in [f"+1480555010{i}" for i in range(len(floor.agents["AZ"]))]:
        assert ping({**AZ_PING, "phoneNumber": phone}).json()["data"]["agentAvailable"] is True

    with django_capture_on_commit_callbacks() as callbacks:
        answer = ping(AZ_PING)

    assert answer.json()["data"]["agentAvailable"] is False
    assert callbacks == []
