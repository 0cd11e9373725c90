"""Analysts' reads on a real streaming replica, and on the primary when it lags or goes away.

The test starts its own primary and, from a base backup of it, a replica streaming from it;
a Django process configured with both (DATABASE_URL, DATABASE_REPLICA_URL) runs the analyst's
export (tests/config/replica_session.py) while the test pauses the replica's replay and stops it.
"""

import json
import os
import subprocess
import sys
import time

import psycopg
import pytest

from tests.servers import REPO, PostgresCluster, demo_database_prepare

pytestmark = pytest.mark.postgres

DATABASE = "callrouting"


class Session:
    """The Django process, one command and one JSON answer at a time."""

    def __init__(self, env: dict) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.config.replica_session"],
            cwd=REPO, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip

    def __call__(self, command: str) -> dict:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        assert line, "the session process ended"
        return json.loads(line)

    def close(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        self.process.wait(timeout=30)


def _records_on(cluster: PostgresCluster) -> int:
    with psycopg.connect(cluster.database_url(DATABASE), connect_timeout=5) as conn:
        row = conn.execute("SELECT count(*) FROM calls_callrecord").fetchone()
        assert row is not None
        return row[0]


def _until(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


@pytest.fixture
def primary_and_replica():
    primary, replica = PostgresCluster(), PostgresCluster()
    try:
        primary.init()
        primary.start()
        with psycopg.connect(primary.url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DATABASE}")
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "SECRET_KEY": "replica-test-not-a-secret",
            "DEBUG": "false",
            "LOG_LEVEL": "ERROR",
            "DATABASE_URL": primary.database_url(DATABASE),
            "CACHE_URL": "",
            "CELERY_BROKER_URL": "memory://",
        }
        demo_database_prepare(env)
        replica.init_as_replica_of(primary)
        replica.start()
        yield (
            primary,
            replica,
            env
            | {
                "DATABASE_REPLICA_URL": replica.database_url(DATABASE),
                "DATABASE_REPLICA_RETRY_SECONDS": "1",
            },
        )
    finally:
        replica.destroy()
        primary.destroy()


def test_analysts_read_the_replica_and_the_primary_when_it_lags_or_goes_away(
    primary_and_replica,
):
    primary, replica, env = primary_and_replica
    session = Session(env)
    try:
        for _ in range(3):
            session("add")
        _until(lambda: _records_on(replica) == 3)

        # In step: the export reads the replica.
        assert session("read 30") == {"database": "replica", "rows": 3}

        # Replay paused: a record written since is on the primary only. Within a generous bound
        # the export still reads the replica (and so misses it): the reads really go there.
        with psycopg.connect(replica.database_url(DATABASE), autocommit=True) as conn:
            conn.execute("SELECT pg_wal_replay_pause()")
        session("add")
        assert session("read 1000") == {"database": "replica", "rows": 3}

        # Behind by more than the bound: the primary, with every record.
        time.sleep(2.5)
        assert session("read 2") == {"database": "default", "rows": 4}

        # Caught up again, and tried again after DATABASE_REPLICA_RETRY_SECONDS: the replica.
        with psycopg.connect(replica.database_url(DATABASE), autocommit=True) as conn:
            conn.execute("SELECT pg_wal_replay_resume()")
        _until(lambda: _records_on(replica) == 4)
        time.sleep(1.1)
        assert session("read 30") == {"database": "replica", "rows": 4}

        # The replica goes away: the analyst's export reads the primary, with no error.
        replica.stop()
        assert session("read 30") == {"database": "default", "rows": 4}
        assert _records_on(primary) == 4
    finally:
        session.close()
