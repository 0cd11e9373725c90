"""The contract's sandbox table, answered by a fresh local server as `make run` starts one.

A new SQLite file, migrated and loaded with the demo data (`make demo`), then `manage.py
runserver` as `make run` serves it, with DEBUG on and no settings of the test run's own. The test
talks to it over HTTP only, with the demo's sandbox key, and reads the database file afterwards
to see that nothing was held.
"""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from tests.conftest import PING_URL
from tests.servers import REPO, demo_database_prepare, free_port, wait_for_port

DEMO_SANDBOX_KEY = "5a1d0c3e-9f2b-4c6d-8e7f-0a1b2c3d4e5f"
# The settings of the test run itself, which a fresh local server does not have.
NOT_INHERITED = (
    "DATABASE_URL",
    "CACHE_URL",
    "CELERY_BROKER_URL",
    "DJANGO_SETTINGS_MODULE",
    "SECRET_KEY",
    "DEBUG",
    "RESERVATION_TTL_SECONDS",
)
# The contract's table: the caller's number (Arizona and California area codes, both the demo
# vendor's) and the answer's fields beside timestamp and requestId.
AVAILABLE = {
    "agentAvailable": True,
    "transferTarget": "+18775550100",
    "ttlSeconds": 60,
    "agentCount": 3,
}
TABLE = [
    ("+14805550100", AVAILABLE),
    ("+12135554242", AVAILABLE),  # any other number
    ("+14805550101", {"agentAvailable": False, "reason": "no_agent", "retryAfterSeconds": 30}),
    (
        "+12135550102",
        {"agentAvailable": False, "reason": "concurrency_cap", "retryAfterSeconds": 60},
    ),
    ("+14805550103", {"agentAvailable": False, "reason": "hourly_cap", "retryAfterSeconds": 1800}),
    ("+14805550104", {"agentAvailable": False, "reason": "daily_cap", "retryAfterSeconds": 43200}),
    ("+16025550105", {"agentAvailable": False, "reason": "closed", "retryAfterSeconds": 28800}),
    ("+14805550106", {"agentAvailable": False, "reason": "duplicate_caller"}),
    ("+14805550107", {"agentAvailable": False, "reason": "do_not_call"}),
    ("+14805550108", {"agentAvailable": False, "reason": "consent_missing"}),
]


@pytest.fixture(scope="module")
def fresh_server(tmp_path_factory):
    directory = tmp_path_factory.mktemp("sandbox-server")
    database = directory / "db.sqlite3"
    port = free_port()
    env = {name: value for name, value in os.environ.items() if name not in NOT_INHERITED}
    env.update(
        DATABASE_URL=f"sqlite:///{database}",
        CELERY_BROKER_FOLDER=str(directory / "celery-broker"),
        DEBUG="true",  # as `make run`
    )
    demo_database_prepare(env)
    log = (directory / "runserver.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        process_group=0,
    )
    try:
        wait_for_port(port, timeout=60)
        yield {"url": f"http://127.0.0.1:{port}", "database": database}
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(15)
        log.close()


def post(server, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        server["url"] + PING_URL,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def held_rows(database) -> tuple:
    """Reservations, and agents and transfer numbers ever held, in the server's database."""
    with sqlite3.connect(database) as connection:
        return tuple(
            connection.execute(query).fetchone()[0]
            for query in (
                "SELECT count(*) FROM routing_reservation",
                "SELECT count(*) FROM routing_agent WHERE held_until IS NOT NULL",
                "SELECT count(*) FROM routing_transfernumber WHERE held_until IS NOT NULL",
            )
        )


def test_the_demo_sandbox_key_validates_with_sandbox_true(fresh_server):
    status, answer = post(fresh_server, {"vendorKey": DEMO_SANDBOX_KEY})

    assert status == 200
    data = answer["data"]
    assert data == {
        "vendorActive": True,
        "authorizedStates": ["AZ", "CA"],
        "sandbox": True,
        "requestId": data["requestId"],
    }


@pytest.mark.parametrize(("phone_number", "expected"), TABLE)
def test_each_sandbox_number_answers_as_the_contracts_table(fresh_server, phone_number, expected):
    before = held_rows(fresh_server["database"])

    status, answer = post(
        fresh_server, {"vendorKey": DEMO_SANDBOX_KEY, "phoneNumber": phone_number}
    )

    assert status == 200
    data = answer["data"]
    assert answer["status"] == 200
    assert data == {**expected, "timestamp": data["timestamp"], "requestId": data["requestId"]}
    assert held_rows(fresh_server["database"]) == before == (0, 0, 0)


def test_0199_answers_the_500_envelope(fresh_server):
    status, answer = post(
        fresh_server, {"vendorKey": DEMO_SANDBOX_KEY, "phoneNumber": "4805550199"}
    )

    assert status == 500
    assert answer == {
        "status": 500,
        "data": {
            "message": "An unexpected condition was encountered by the server.",
            "requestId": answer["data"]["requestId"],
        },
    }


def test_a_sandbox_repeat_answers_the_same_number_with_the_time_left(fresh_server):
    body = {"vendorKey": DEMO_SANDBOX_KEY, "phoneNumber": "+14805557777", "stateCode": "AZ"}

    _, first = post(fresh_server, body)
    _, second = post(fresh_server, body)

    assert second["data"]["transferTarget"] == first["data"]["transferTarget"] == "+18775550100"
    assert 1 <= second["data"]["ttlSeconds"] <= 60
    with sqlite3.connect(fresh_server["database"]) as connection:
        outcomes = connection.execute(
            "SELECT outcome, sandbox FROM calls_callrecord WHERE phone_number = '+14805557777'"
            " ORDER BY received_at"
        ).fetchall()
    assert outcomes == [("reserved", 1), ("repeat", 1)]
