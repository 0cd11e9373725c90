"""A Celery worker holding expiry tasks when Redis restarts: it must reconnect and keep working.

A real `celery worker` process on a redis-server this test starts, stops and starts again; the
worker reads the test's own database. Before the fix, the worker exited at once for good
(`Unrecoverable error: AttributeError("'NoneType' object has no attribute 'hostname'")`).
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis as redis_client
from django.db import connection

from calls.tasks import expire_reservation
from config.celery import app
from routing.models import Reservation
from tests.conftest import DEMO_KEY
from tests.servers import RedisServer

pytestmark = pytest.mark.django_db(transaction=True)

REPO = Path(__file__).resolve().parents[2]


def the_test_database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def reserve(ping, phone: str, state: str) -> Reservation:
    answer = ping({"vendorKey": DEMO_KEY, "phoneNumber": phone, "stateCode": state})
    assert answer.status_code == 200
    assert answer.json()["data"]["agentAvailable"] is True
    return Reservation.objects.get(phone_number=phone)


def enqueue_expiry(broker_url: str, reservation: Reservation) -> None:
    """What a ping does with RESERVATION_EXPIRY_TASKS on, on this test's Redis."""
    with app.connection_for_write(broker_url) as broker:
        expire_reservation.apply_async(
            args=[reservation.pk], eta=reservation.expires_at, connection=broker
        )


def wait_for(condition, *, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@pytest.fixture
def redis_server():
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def worker(redis_server, tmp_path):
    log_path = tmp_path / "worker.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "DATABASE_URL": the_test_database_url(),
        "CELERY_BROKER_URL": f"{redis_server.url}/0",
        "CACHE_URL": "",
    }
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo",
             "--loglevel", "INFO", "--without-mingle", "--without-gossip"],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    process.log_path = log_path
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


def test_a_worker_holding_expiry_tasks_survives_a_redis_restart(
    demo, ping, settings, redis_server, worker
):
    broker_url = f"{redis_server.url}/0"
    settings.RESERVATION_EXPIRY_TASKS = False  # the test enqueues on its own Redis instead
    settings.RESERVATION_TTL_SECONDS = 60
    held = [reserve(ping, f"+1480555030{i}", "AZ") for i in range(3)]
    for reservation in held:
        enqueue_expiry(broker_url, reservation)
    # The worker has taken all three: due in a minute, they wait in it unacknowledged.
    unacked = redis_client.Redis.from_url(broker_url)
    assert wait_for(lambda: unacked.hlen("unacked") == 3, timeout=30), worker.log_path.read_text()

    redis_server.stop()
    time.sleep(2)
    redis_server.start()

    # A reservation made after the restart is expired at its TTL by that same worker.
    settings.RESERVATION_TTL_SECONDS = 1
    reservation = reserve(ping, "+14155550300", "CA")
    enqueue_expiry(broker_url, reservation)

    def expired() -> bool:
        reservation.refresh_from_db()
        return reservation.status == "expired"

    assert wait_for(expired, timeout=20), "not expired:\n" + worker.log_path.read_text()
    assert worker.poll() is None
    assert "Unrecoverable error" not in worker.log_path.read_text()
