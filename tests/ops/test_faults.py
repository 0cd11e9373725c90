"""Faults: the production server (gunicorn) with its database or its Redis stopped, and back.

Each test runs its own PostgreSQL cluster and its own redis-server on free ports, and stops and
starts those: the shared servers are never touched. Marked `postgres` (they need PostgreSQL's
binaries, and CI runs them); bounded in time.
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psycopg
import pytest

from tests.conftest import DEMO_KEY
from tests.servers import (
    PostgresCluster,
    RedisServer,
    demo_database_prepare,
    free_port,
    wait_for_port,
)

pytestmark = pytest.mark.postgres

REPO = Path(__file__).resolve().parents[2]
UNEXPECTED = "An unexpected condition was encountered by the server."


@pytest.fixture(scope="module")
def cluster():
    """A throwaway PostgreSQL with the schema and the demo data."""
    cluster = PostgresCluster()
    try:
        cluster.init()
        cluster.start()
        with psycopg.connect(cluster.url, autocommit=True) as conn:
            conn.execute("CREATE DATABASE callrouting")
        env = server_env(cluster.database_url("callrouting"))
        demo_database_prepare(env)
        yield cluster
    finally:
        cluster.destroy()


def server_env(database_url: str, **settings: str) -> dict:
    """Production settings for a server of this test, whatever the test run's own environment."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": database_url,
        "DEBUG": "false",
        "SECRET_KEY": "fault-test-only",
        "ALLOWED_HOSTS": "127.0.0.1",
        "LOG_LEVEL": "ERROR",
        "CACHE_URL": "",
        "CELERY_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0",  # nothing there
        # Agents free again a second after each ping: the tests ping a few times per state.
        "RESERVATION_TTL_SECONDS": "1",
        # No Celery worker runs beside these servers: /readyz is about the database and broker.
        "READYZ_WORKER_SECONDS": "0",
        **settings,
    }


@contextlib.contextmanager
def web_server(env: dict):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi", "-b", f"127.0.0.1:{port}",
         "-k", "gthread", "--workers", "1", "--threads", "4", "--log-level", "error"],
        cwd=REPO,
        env=env,
        start_new_session=True,
    )  # fmt: skip
    try:
        wait_for_port(port, timeout=30)
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def ping(base: str, phone: str) -> tuple[int, dict, float]:
    """(status, body, seconds taken) of one ping."""
    body = json.dumps({"vendorKey": DEMO_KEY, "phoneNumber": phone}).encode()
    request = urllib.request.Request(
        f"{base}/functions/v1/vendors-ping",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    return status, json.loads(raw), time.monotonic() - started


def fetch_one(database_url: str, sql: str, params=()) -> tuple | None:
    with psycopg.connect(database_url, connect_timeout=5) as conn:
        return conn.execute(sql, params).fetchone()


@pytest.mark.parametrize(
    "connections",
    [
        pytest.param({"CONN_MAX_AGE": "60"}, id="persistent-connections"),
        pytest.param({"DATABASE_POOL": "true", "DATABASE_POOL_MIN_SIZE": "2"}, id="pool"),
    ],
)
def test_with_postgresql_stopped_a_ping_answers_500_within_2_seconds_and_then_recovers(
    cluster, connections
):
    database_url = cluster.database_url("callrouting")
    with web_server(server_env(database_url, **connections)) as base:
        status, _, _ = ping(base, "+14805550101")
        assert status == 200

        cluster.stop()
        try:
            outage = [ping(base, f"+1480555020{i}") for i in range(3)]
        finally:
            cluster.start()

        for status, body, seconds in outage:
            assert status == 500
            assert body == {
                "status": 500,
                "data": {"message": UNEXPECTED, "requestId": body["data"]["requestId"]},
            }
            assert seconds < 2.0

        # Back up: pings succeed again with no restart of the server. The pool reconnects in
        # the background (with backoff), so allow it a bounded while; then every ping succeeds.
        deadline = time.monotonic() + 20
        while (status := ping(base, "+14805550301")[0]) != 200 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert status == 200
        after = [ping(base, f"+1480555040{i}") for i in range(4)]
        assert [status for status, _, _ in after] == [200, 200, 200, 200]


def test_with_persistent_connections_the_first_ping_after_postgresql_returns_succeeds(cluster):
    database_url = cluster.database_url("callrouting")
    with web_server(server_env(database_url, CONN_MAX_AGE="60")) as base:
        assert ping(base, "+14155550101")[0] == 200
        cluster.stop()
        try:
            assert ping(base, "+14155550102")[0] == 500
        finally:
            cluster.start()

        status, body, _ = ping(base, "+14155550103")

    assert status == 200
    assert body["data"]["agentAvailable"] is True


def sweep_task_exists() -> bool:
    try:
        from calls import tasks
    except ImportError:
        return False
    return hasattr(tasks, SWEEP_TASK.rsplit(".", 1)[1])


# The reservation lifecycle's periodic sweep, run by Celery beat.
SWEEP_TASK = "calls.tasks.expire_due_reservations"


def test_with_redis_stopped_pings_are_answered_and_records_catch_up_when_it_returns(cluster):
    if not sweep_task_exists():
        # Built on the reservation-lifecycle branch; this test runs as soon as it is merged.
        pytest.skip(f"{SWEEP_TASK} (the reservation lifecycle's sweep) is not here yet")
    database_url = cluster.database_url("callrouting")
    redis = RedisServer()
    redis.start()
    env = server_env(
        database_url,
        CELERY_BROKER_URL=f"{redis.url}/0",
        CACHE_URL=f"{redis.url}/1",
        RESERVATION_TTL_SECONDS="2",
        RESERVATION_SWEEP_SECONDS="1",
    )
    worker = None
    try:
        with web_server(env) as base:
            assert ping(base, "+15205550101")[0] == 200  # with Redis up
            redis.stop()

            status, body, seconds = ping(base, "+15205550102")

            assert status == 200
            assert body["data"]["agentAvailable"] is True
            assert seconds < 2.0
            record_sql = (
                "SELECT c.outcome, r.status FROM calls_callrecord c "
                "JOIN routing_reservation r ON r.id = c.reservation_id WHERE c.request_id = %s"
            )
            request_id = body["data"]["requestId"]
            assert fetch_one(database_url, record_sql, [request_id]) == ("reserved", "active")

            time.sleep(2.5)  # its TTL passes with no broker and no worker
            assert fetch_one(database_url, record_sql, [request_id]) == ("reserved", "active")

            redis.start()
            worker = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "config", "worker", "--beat",
                 "--concurrency", "1", "--pool", "solo", "--loglevel", "warning",
                 "--schedule", str(cluster.directory / "beat-schedule")],
                cwd=REPO,
                env=env,
                start_new_session=True,
            )  # fmt: skip
            deadline = time.monotonic() + 45
            while time.monotonic() < deadline:
                if fetch_one(database_url, record_sql, [request_id]) == ("expired", "expired"):
                    break
                time.sleep(0.5)
            assert fetch_one(database_url, record_sql, [request_id]) == ("expired", "expired")
    finally:
        if worker is not None:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(timeout=30)
        redis.stop()


@pytest.mark.parametrize(
    "connections",
    [
        pytest.param({"DATABASE_POOL": "true", "DATABASE_POOL_MIN_SIZE": "4"}, id="pool"),
        pytest.param({"CONN_MAX_AGE": "60"}, id="persistent"),
    ],
)
def test_the_first_ping_after_a_postgresql_restart_succeeds(cluster, connections):
    # Connections are checked without a round trip (config/postgresql/base.py): the ones the
    # restart ended must still be noticed and replaced, never used for a ping.
    database_url = cluster.database_url("callrouting")
    with web_server(server_env(database_url, **connections)) as base:
        assert [ping(base, f"+1415555020{i}")[0] for i in range(4)] == [200] * 4
        cluster.stop()
        cluster.start()

        status, body, _ = ping(base, "+14805550211")

    assert status == 200
    assert body["data"]["agentAvailable"] is True
