"""/healthz and /readyz, as a load balancer sees them."""

import socket
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models.functions import Now

from calls.heartbeat import SWEEP
from calls.models import WorkerHeartbeat
from config.health import READYZ_MAX_AGE_SECONDS, readiness_reset


def test_it_says_alive_without_touching_the_database(client, django_assert_num_queries, db):
    with django_assert_num_queries(0):
        response = client.get("/healthz", HTTP_HOST="10.0.0.5")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["Cache-Control"] == "no-store"


def test_it_answers_a_load_balancer_that_uses_an_ip_as_host(client, worker_alive):
    # The host is not in ALLOWED_HOSTS: every other page would answer 400.
    response = client.get("/readyz", HTTP_HOST="10.0.0.5:8000")
    assert response.status_code == 200


def test_it_is_ready_when_the_database_and_the_broker_answer_and_a_worker_runs_the_sweep(
    client, worker_alive
):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "broker": "ok", "worker": "ok"},
    }


def test_it_is_not_ready_when_no_worker_has_ever_run_the_sweep(client, db):
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "checks": {"database": "ok", "broker": "ok", "worker": "failed: NoWorkerHeartbeat"},
    }


def test_it_is_not_ready_when_the_last_sweep_is_older_than_the_setting(
    client, transactional_db, settings
):
    settings.READYZ_WORKER_SECONDS = 30
    WorkerHeartbeat.objects.create(name=SWEEP, seen_at=Now() - timedelta(seconds=31))
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["worker"] == "failed: NoWorkerHeartbeat"

    WorkerHeartbeat.objects.update(seen_at=Now() - timedelta(seconds=25))
    readiness_reset()  # the last result is kept for a second
    assert client.get("/readyz").status_code == 200


def test_it_expects_no_worker_when_the_setting_is_0(client, db, settings):
    settings.READYZ_WORKER_SECONDS = 0
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "broker": "ok"}}


def test_it_refuses_methods_other_than_get(client, db):
    response = client.post("/readyz")
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_it_is_not_ready_when_the_broker_refuses_connections(client, worker_alive, settings):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{_closed_port()}/0"
    started = time.monotonic()
    response = client.get("/readyz")
    assert time.monotonic() - started < 3
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "checks": {"database": "ok", "broker": "failed: OperationalError", "worker": "ok"},
    }


@pytest.fixture
def silent_broker():
    """A TCP server that accepts connections and never answers: a hung broker."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    server.close()


def test_it_gives_up_on_a_broker_that_never_answers_within_its_timeout(
    client, db, settings, silent_broker
):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{silent_broker}/0"
    settings.READYZ_BROKER_TIMEOUT_SECONDS = 1
    started = time.monotonic()
    response = client.get("/readyz")
    elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert response.json()["checks"]["broker"].startswith("failed: ")
    assert elapsed < 4, elapsed


@pytest.mark.postgres  # a database server that is gone; SQLite's test database is in memory
@pytest.mark.django_db(transaction=True)
def test_it_is_not_ready_when_the_database_is_unreachable(client, worker_alive):
    saved = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict.update(HOST="127.0.0.1", PORT=str(_closed_port()))
    try:
        response = client.get("/readyz")
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "checks": {
            "database": "failed: OperationalError",
            "broker": "ok",
            "worker": "failed: database",
        },
    }
    # Once the database is back, the same process is ready again, from its next check.
    time.sleep(READYZ_MAX_AGE_SECONDS)
    assert client.get("/readyz").status_code == 200


@pytest.fixture
def redis_broker(settings):
    from tests.servers import RedisServer

    server = RedisServer()
    server.start()
    settings.CELERY_BROKER_URL = f"{server.url}/0"
    yield server
    server.stop()


def connections_received(server) -> int:
    import redis

    with redis.Redis.from_url(server.url) as client:
        # Less the one this question opens.
        return client.info("stats")["total_connections_received"] - 1


def test_its_broker_check_keeps_one_connection_instead_of_opening_one_each_time(redis_broker, db):
    from config.health import check_broker

    before = connections_received(redis_broker)
    for _ in range(10):
        check_broker()
    assert connections_received(redis_broker) - before - 1 <= 1


def test_probes_in_the_same_second_share_one_check(client, redis_broker, worker_alive):
    before = connections_received(redis_broker)
    answers = [client.get("/readyz") for _ in range(20)]
    assert {answer.status_code for answer in answers} == {200}
    assert connections_received(redis_broker) - before - 1 <= 1
