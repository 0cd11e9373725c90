"""Stalls: a PostgreSQL or a Redis that stops answering (its processes stopped with SIGSTOP, as a
frozen host or a swapped-out server would be), under the production server (gunicorn).

Pings answer within about 2 s whatever the database does, and within the publishing bound
whatever the broker does; /healthz touches neither; /readyz is bounded, and a storm of probes
costs one check a second. Each test runs its own PostgreSQL cluster and redis-server.
"""

import contextlib
import json
import os
import signal
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import DEMO_KEY
from tests.ops.test_faults import cluster, server_env, web_server  # noqa: F401 (a fixture)
from tests.servers import RedisServer

pytestmark = pytest.mark.postgres

BUSY = "The service is busy. Please retry shortly."
UNEXPECTED = "An unexpected condition was encountered by the server."


def get(
    url: str, *, body: dict | None = None, timeout: float = 30
) -> tuple[int, dict, dict, float]:
    """(status, JSON body, headers, seconds taken)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, raw, headers = response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        status, raw, headers = error.code, error.read(), dict(error.headers)
    return status, json.loads(raw), headers, time.monotonic() - started


def ping(base: str, phone: str) -> tuple[int, dict, dict, float]:
    body = {"vendorKey": DEMO_KEY, "phoneNumber": phone}
    return get(f"{base}/functions/v1/vendors-ping", body=body)


def process_tree(root: int) -> list[int]:
    """`root` and its children (PostgreSQL's backends are the postmaster's children)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == root:
                children.append(int(stat.parent.name))
    return [root, *children]


@contextlib.contextmanager
def stopped(pids: list[int]):
    """The processes stop answering (SIGSTOP), and go on when the block ends."""
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


def postmaster_pid(cluster) -> int:  # noqa: F811
    return int((cluster.data / "postmaster.pid").read_text().split()[0])


@pytest.fixture
def redis():
    server = RedisServer()
    server.start()
    yield server
    with contextlib.suppress(ProcessLookupError):
        os.kill(server.process.pid, signal.SIGCONT)
    server.stop()


def assert_error_envelope(status: int, body: dict, headers: dict) -> None:
    assert status in (500, 503)
    message = BUSY if status == 503 else UNEXPECTED
    assert body == {
        "status": status,
        "data": {"message": message, "requestId": body["data"]["requestId"]},
    }
    if status == 503:
        assert headers["Retry-After"] == "1"


@pytest.mark.parametrize(
    "connections",
    [
        pytest.param({"CONN_MAX_AGE": "60"}, id="persistent-connections"),
        pytest.param({"DATABASE_POOL": "true", "DATABASE_POOL_MIN_SIZE": "2"}, id="pool"),
    ],
)
def test_with_postgresql_stopped_answering_pings_and_probes_answer_within_2_seconds(
    cluster,  # noqa: F811
    connections,
):
    database_url = cluster.database_url("callrouting")
    env = server_env(database_url, CELERY_BROKER_URL="memory://", **connections)
    with web_server(env) as base:
        assert ping(base, "+14805550101")[0] == 200  # a persistent connection, then the stall
        assert get(f"{base}/readyz")[0] == 200
        time.sleep(1.1)  # /readyz's last result is then too old to answer from

        with stopped(process_tree(postmaster_pid(cluster))):
            outage = [ping(base, f"+1480555020{i}") for i in range(2)]
            healthz = get(f"{base}/healthz")
            readyz = get(f"{base}/readyz")

        for status, body, headers, seconds in outage:
            assert_error_envelope(status, body, headers)
            assert seconds < 2.5, seconds
        assert healthz[:2] == (200, {"status": "ok"})
        assert healthz[3] < 0.5
        assert readyz[0] == 503
        assert readyz[1]["checks"]["database"].startswith("failed: ")
        assert readyz[3] < 2.5, readyz[3]

        # Going on again, the server answers at once, with nothing held from the outage.
        assert ping(base, "+14805550301")[0] == 200


def test_with_redis_stopped_answering_a_ping_waits_on_it_within_the_stated_bound(
    cluster,  # noqa: F811
    redis,
):
    database_url = cluster.database_url("callrouting")
    env = server_env(
        database_url,
        CELERY_BROKER_URL=f"{redis.url}/0",
        CACHE_URL=f"{redis.url}/1",
        RESERVATION_EXPIRY_TASKS="true",
    )
    with web_server(env) as base:
        assert ping(base, "+15205550101")[0] == 200  # connections to Redis made, then the stall
        with stopped([redis.process.pid]):
            during = [ping(base, f"+1520555020{i}") for i in range(6)]

    # The bound in docs/settings.md: about twice BROKER_PUBLISH_TIMEOUT_MS (250 ms), only until a
    # publish has failed; the shared cache's own timeouts are shorter still.
    for status, _, _, seconds in during:
        assert status == 200
        assert seconds < 1.0, [round(outcome[3], 2) for outcome in during]


def test_a_storm_of_readyz_probes_on_a_hung_redis_leaves_pings_alone(
    cluster,  # noqa: F811
    redis,
):
    database_url = cluster.database_url("callrouting")
    env = server_env(
        database_url,
        CELERY_BROKER_URL=f"{redis.url}/0",
        RESERVATION_EXPIRY_TASKS="false",
        READYZ_BROKER_TIMEOUT_SECONDS="1",
    )
    with web_server(env) as base:
        assert ping(base, "+16025550100")[0] == 200
        assert get(f"{base}/readyz")[0] == 200  # the running server's last result
        stop = threading.Event()
        probes: list[tuple[float, int, float]] = []  # (when, status, seconds taken)

        def probe_loop():
            while not stop.is_set():
                when = time.monotonic()
                status, _, _, seconds = get(f"{base}/readyz")
                probes.append((when, status, seconds))

        stalled_at = time.monotonic()
        with stopped([redis.process.pid]):
            loops = [threading.Thread(target=probe_loop) for _ in range(16)]
            for loop in loops:
                loop.start()
            try:
                time.sleep(0.5)
                pings = []
                for i in range(8):
                    pings.append(ping(base, f"+1602555020{i}"))
                    time.sleep(0.4)
            finally:
                stop.set()
                for loop in loops:
                    loop.join()

    assert [status for status, *_ in pings] == [200] * 8
    assert max(seconds for *_, seconds in pings) < 1.0, [round(p[3], 2) for p in pings]
    # The last result, at most a second old, then the check that timed out (READYZ_TIMEOUT_SECONDS).
    assert {status for when, status, _ in probes if when > stalled_at + 3.1} == {503}
    # Only the probe that starts a check waits for it.
    slow = [seconds for *_, seconds in probes if seconds > 0.5]
    assert len(probes) > 100
    assert len(slow) <= 5, (len(slow), len(probes))
