import io
import json
import os
import threading
import time

import pytest
from django.core.management import call_command
from django.db import connection, connections
from rest_framework.test import APIClient

PING_URL = "/functions/v1/vendors-ping"
DEMO_KEY = "6ab36a94-5dfb-4336-a559-63da6a5a26d2"
ALL_STATES_KEY = "3f1c2a9e-7b4d-4e8a-9c61-2d5b8e0f4a17"
# A ping the demo vendor may send: a caller in Arizona, where the demo has agents.
AZ_PING = {"vendorKey": DEMO_KEY, "phoneNumber": "+14801234567", "stateCode": "AZ"}


def pytest_runtest_setup(item):
    # PostgreSQL-only tests (row locks, concurrency) skip on SQLite for a quick local run,
    # but CI sets REQUIRE_POSTGRES so they can never be skipped there.
    if item.get_closest_marker("postgres") and connection.vendor != "postgresql":
        if os.environ.get("REQUIRE_POSTGRES"):
            pytest.fail("REQUIRE_POSTGRES is set but the test database is not PostgreSQL")
        pytest.skip("needs PostgreSQL: set DATABASE_URL=postgres://…")
    if item.get_closest_marker("sqlite") and connection.vendor != "sqlite":
        pytest.skip("about SQLite; CI runs these in its SQLite pass")


@pytest.fixture
def demo(db):
    """The contract's demo data, as `seed_demo` makes it: only for tests about the demo data
    or the guide's examples written against it. Other tests build what they need with
    tests/factories.py, so their numbers come from what they show."""
    call_command("seed_demo", stdout=io.StringIO())


@pytest.fixture
def worker_alive(transactional_db):
    """A Celery worker has just run beat's expiry sweep, as far as /readyz can tell (committed:
    /readyz reads it on a connection of its own)."""
    from calls.heartbeat import worker_heartbeat_record

    worker_heartbeat_record()


@pytest.fixture
def api():
    return APIClient()


class Pinger:
    """Posts raw JSON bodies to the ping endpoint, the way a vendor's HTTP client does."""

    def __init__(self, client):
        self.client = client

    def __call__(self, body, *, content_type="application/json", **extra):
        raw = body if isinstance(body, str | bytes) else json.dumps(body)
        return self.client.post(PING_URL, data=raw, content_type=content_type, **extra)


@pytest.fixture
def ping(api):
    return Pinger(api)


# --- Staff admin: one login per role, and its client -----------------------------------------
@pytest.fixture
def make_staff(db):
    """A staff login in the given role group ("Operations", "Analysts") or none."""
    from tests.factories import PASSWORD, StaffFactory

    def make(username, role=None, *, password=PASSWORD):
        return StaffFactory(username=username, role=role, password=password)

    return make


def _logged_in(user):
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def operations_user(make_staff):
    return make_staff("olivia.ops", "Operations")


@pytest.fixture
def operations_client(operations_user):
    return _logged_in(operations_user)


@pytest.fixture
def analyst(make_staff):
    return make_staff("arthur.analyst", "Analysts")


@pytest.fixture
def analyst_client(analyst):
    return _logged_in(analyst)


@pytest.fixture
def superuser(db):
    from tests.factories import SuperuserFactory

    return SuperuserFactory(username="root")


@pytest.fixture
def superuser_client(superuser):
    return _logged_in(superuser)


@pytest.fixture(autouse=True)
def _fresh_shared_cache():
    """Rate-limit counters and cached vendor keys must not leak from one test into the next."""
    from django.core.cache import cache

    from config.sharedcache import cache_reset_backoff

    cache_reset_backoff()
    cache.clear()
    yield
    cache_reset_backoff()


def backends_waiting_on_a_lock() -> int:
    """PostgreSQL backends of this database waiting for a lock (concurrency tests)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def second_waits_on_first(first, second, *, first_ready, first_may_finish) -> bool:
    """Run `first` and `second` in threads of their own (each its own connection, closed when
    it ends). Once `first_ready` is set, wait until a backend waits on a lock (the second, on
    the first's rows), then set `first_may_finish` and join both. Whether the second waited."""

    def in_own_connection(work):
        try:
            work()
        finally:
            connections.close_all()

    threads = [threading.Thread(target=in_own_connection, args=(work,)) for work in (first, second)]
    for thread in threads:
        thread.start()
    assert first_ready.wait(10)
    deadline = time.monotonic() + 10
    while not backends_waiting_on_a_lock() and time.monotonic() < deadline:
        time.sleep(0.02)
    waited = backends_waiting_on_a_lock() == 1
    first_may_finish.set()
    for thread in threads:
        thread.join(10)
    return waited


@pytest.fixture(autouse=True)
def _fresh_readiness():
    """/readyz keeps its last result for a second: no test may see another's."""
    from config.health import readiness_reset

    readiness_reset()
    yield
    readiness_reset()


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """The test database, with a guard on every status field (tests/status_guard.py)."""
    from tests.status_guard import status_guards_install

    with django_db_blocker.unblock():
        status_guards_install()


@pytest.fixture(autouse=True, scope="session")
def _flush_without_the_web_timeouts():
    """A transactional test ends with a flush of every table: schema work, which production runs
    with the long timeouts (as migrations do), not the 2 s a ping gets. Under a loaded machine the
    flush could outlast the web's limit and fail the test that had passed."""
    from django.test import TransactionTestCase

    from config.database import database_timeouts_lifted

    original = TransactionTestCase._fixture_teardown

    def teardown(self):
        with database_timeouts_lifted():
            original(self)

    TransactionTestCase._fixture_teardown = teardown
    yield
    TransactionTestCase._fixture_teardown = original
