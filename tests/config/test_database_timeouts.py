"""A database that stalls (a lock held by a migration, a slow statement) fails a ping in about a
second with 503 and Retry-After, writing nothing; exports and migrations get longer limits.

The locks are real: another PostgreSQL connection holds them, as a careless migration would.
"""

import contextlib
import io
import threading
import time

import psycopg
import pytest
from django.core.management import call_command
from django.db import OperationalError, connection
from django.db.models.signals import pre_migrate

from calls.models import CallRecord
from config.database import database_timeouts_lifted
from config.errors import is_database_stall
from routing.models import Agent, Reservation
from tests.conftest import AZ_PING
from tests.factories import VendorFactory, floor_build

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def floor(db):
    """A vendor for AZ whose key AZ_PING sends, three agents licensed for AZ, five numbers."""
    VendorFactory.with_key(authorized_states=["AZ"], key=AZ_PING["vendorKey"])
    return floor_build(agents={"AZ": 3}, numbers=5)


BUSY = "The service is busy. Please retry shortly."


def other_connection() -> psycopg.Connection:
    """A connection of its own, as a migration or a long report would have."""
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("options", None)  # no timeouts: it holds its lock as long as the test says
    return psycopg.connect(**params)


@contextlib.contextmanager
def table_locked(table: str, *, for_seconds: float = 5.0, wait_for_release: bool = False):
    """ACCESS EXCLUSIVE on `table`, from another connection, in a transaction it ends after
    `for_seconds` (so a ping with no timeout answers late instead of hanging the test), or on
    leaving the block unless `wait_for_release`."""
    other = other_connection()
    other.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
    timer = threading.Timer(for_seconds, other.rollback)  # psycopg serializes the two threads
    timer.start()
    try:
        yield
    finally:
        if wait_for_release:
            timer.join()
        timer.cancel()
        other.rollback()
        other.close()


def show(setting: str) -> str:
    """The setting in milliseconds, on this connection."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT setting FROM pg_settings WHERE name = %s", [setting])
        return cursor.fetchone()[0]


@pytest.mark.parametrize("table", ["routing_agent", "calls_callrecord", "vendors_vendor"])
def test_a_ping_answers_503_within_2_seconds_while_a_table_it_needs_is_locked(floor, ping, table):
    with table_locked(table):
        started = time.monotonic()
        answer = ping(AZ_PING)
        elapsed = time.monotonic() - started

    assert elapsed < 2.0, elapsed
    assert answer.status_code == 503
    assert answer["Retry-After"] == "1"
    body = answer.json()
    assert body == {"status": 503, "data": {"message": BUSY, "requestId": answer["X-Request-ID"]}}
    # Nothing was written, and no agent is held for a caller the vendor was told nothing about.
    assert not CallRecord.objects.exists()
    assert not Reservation.objects.exists()
    assert not Agent.objects.filter(held_until__isnull=False).exists()
    # The lock gone, the same process answers at once.
    assert ping(AZ_PING).json()["data"]["agentAvailable"] is True


def test_a_slow_statement_is_cancelled_at_the_statement_timeout(settings):
    assert show("statement_timeout") == str(settings.DATABASE_STATEMENT_TIMEOUT_MS)
    assert show("lock_timeout") == str(settings.DATABASE_LOCK_TIMEOUT_MS)
    started = time.monotonic()
    with pytest.raises(OperationalError) as raised, connection.cursor() as cursor:
        cursor.execute("SELECT pg_sleep(5)")
    assert is_database_stall(raised.value)
    assert time.monotonic() - started < 2.0


def test_lifted_timeouts_let_long_work_finish_and_are_put_back_after(settings):
    settings.DATABASE_LONG_STATEMENT_TIMEOUT_MS = 0
    with database_timeouts_lifted(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_sleep(2)")
    assert show("statement_timeout") == str(settings.DATABASE_STATEMENT_TIMEOUT_MS)
    assert show("lock_timeout") == str(settings.DATABASE_LOCK_TIMEOUT_MS)


def test_an_export_waits_for_a_lock_a_ping_would_not(floor, ping, tmp_path, settings):
    for phone in ("+14805550100", "+14805550101"):
        assert ping({**AZ_PING, "phoneNumber": phone}).status_code == 200
    output = tmp_path / "records.csv"
    with table_locked("calls_callrecord", for_seconds=2.5, wait_for_release=True):
        call_command(
            "export_calls",
            "--since=2000-01-01",
            "--until=2100-01-01",
            "--format=csv",
            f"--output={output}",
            stderr=io.StringIO(),
        )
    assert len(output.read_text().splitlines()) == 3  # the header and two records
    assert show("statement_timeout") == str(settings.DATABASE_STATEMENT_TIMEOUT_MS)


def test_migrations_run_with_the_long_timeouts(settings):
    seen = []

    def record(sender, **kwargs):
        seen.append((show("statement_timeout"), show("lock_timeout")))

    # After the admin's receiver, which lifts them for the whole run.
    pre_migrate.connect(record, dispatch_uid="test-record-timeouts")
    try:
        call_command("migrate", verbosity=0)
    finally:
        pre_migrate.disconnect(dispatch_uid="test-record-timeouts")

    assert set(seen[1:]) == {("0", "0")}
    assert show("statement_timeout") == str(settings.DATABASE_STATEMENT_TIMEOUT_MS)


def test_the_reporting_api_answers_503_in_the_envelope_while_its_table_is_locked(api):
    from django.contrib.auth.models import User
    from rest_framework.authtoken.models import Token

    admin = User.objects.create_superuser("sam.super", password="correct horse battery staple")
    token = Token.objects.create(user=admin).key
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    with table_locked("calls_callrecord"):
        started = time.monotonic()
        answer = api.get("/api/v1/call-records")
        elapsed = time.monotonic() - started

    assert elapsed < 2.0, elapsed
    assert answer.status_code == 503
    assert answer["Retry-After"] == "1"
    assert answer.json() == {
        "status": 503,
        "data": {"message": BUSY, "requestId": answer["X-Request-ID"]},
    }
