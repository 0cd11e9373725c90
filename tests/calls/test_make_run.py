"""`make run` as a person runs it: server, worker and beat, with no broker to install.

A fresh SQLite file and an empty broker folder stand for a fresh clone; the test talks to the
stack over HTTP only, and stops it with Ctrl-C's signal, or with a SIGTERM to its whole group.
"""

import http.cookiejar
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import DEMO_KEY, PING_URL

REPO = Path(__file__).resolve().parents[2]
TTL_SECONDS = 2
STARTUP_SECONDS = 120
DEMO_PING = {
    "vendorKey": DEMO_KEY,
    "phoneNumber": "+14801234567",
    "stateCode": "AZ",
}
# Settings the test run itself uses, which must not leak into the local stack.
NOT_INHERITED = (
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "DJANGO_SETTINGS_MODULE",
    "SECRET_KEY",
    "DEBUG",
    "MAKEFLAGS",
    "MAKELEVEL",
    "MFLAGS",
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Browser:
    """Just enough of a browser for the admin: cookies, and the CSRF token of a form."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

    def get(self, path: str) -> str:
        with self.opener.open(self.base_url + path, timeout=10) as response:
            return response.read().decode()

    def post(self, path: str, body: bytes, content_type: str, **headers) -> str:
        request = urllib.request.Request(
            self.base_url + path, data=body, headers={"Content-Type": content_type, **headers}
        )
        with self.opener.open(request, timeout=10) as response:
            return response.read().decode()

    def log_in(self, username: str, password: str) -> None:
        form = self.get("/admin/login/")
        token_field = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form)
        assert token_field, form
        token = token_field.group(1)
        fields = {"username": username, "password": password, "csrfmiddlewaretoken": token}
        page = self.post(
            "/admin/login/?next=/admin/",
            urllib.parse.urlencode(fields).encode(),
            "application/x-www-form-urlencoded",
            Referer=self.base_url + "/admin/login/",
        )
        assert "Log out" in page, "the demo login did not get into the admin"


@pytest.fixture
def local_stack(tmp_path):
    """`make run` on a free port, stopped (and checked stopped) however the test ends."""
    port = _free_port()
    env = {name: value for name, value in os.environ.items() if name not in NOT_INHERITED}
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        CELERY_BROKER_FOLDER=str(tmp_path / "celery-broker"),
        RESERVATION_TTL_SECONDS=str(TTL_SECONDS),
        PORT=str(port),
    )
    log_path = tmp_path / "make-run.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            ["make", "--no-print-directory", "run"],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Its own process group, as a terminal's foreground job, with Ctrl-C's default
            # meaning even if this test run was started with SIGINT ignored.
            process_group=0,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
    stack = {"process": process, "port": port, "log": log_path}
    try:
        yield stack
    finally:
        stack["stopped_cleanly"] = _stop(process)
    assert stack["stopped_cleanly"], "make run left processes behind:\n" + log_path.read_text()


def _stop(process) -> bool:
    """Ctrl-C, then check that every process `make run` started is gone."""
    group = process.pid
    try:
        os.killpg(group, signal.SIGINT)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        process.poll()
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    os.killpg(group, signal.SIGKILL)
    process.wait(10)
    return False


def _wait_until_serving(stack) -> str:
    base_url = f"http://127.0.0.1:{stack['port']}"
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if stack["process"].poll() is not None:
            pytest.fail("make run stopped on its own:\n" + stack["log"].read_text())
        try:
            urllib.request.urlopen(base_url + "/admin/login/", timeout=2).close()
            return base_url
        except OSError:
            time.sleep(0.5)
    pytest.fail("make run did not serve in time:\n" + stack["log"].read_text())


def test_make_run_expires_a_reservation_in_the_admin_within_5_seconds_of_its_ttl(local_stack):
    base_url = _wait_until_serving(local_stack)
    password = re.search(r"password '([^']+)'", local_stack["log"].read_text()).group(1)
    browser = Browser(base_url)
    browser.log_in("demo", password)

    body = json.dumps(DEMO_PING).encode()
    answer = json.loads(browser.post(PING_URL, body, "application/json"))["data"]
    assert answer["agentAvailable"] is True
    assert answer["ttlSeconds"] == TTL_SECONDS
    expires_at = datetime.strptime(answer["timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=UTC
    ) + timedelta(seconds=TTL_SECONDS)
    reservation_link = "/admin/routing/reservation/1/change/"
    assert reservation_link in browser.get("/admin/routing/reservation/?status__exact=active")

    def shows_expired() -> bool:
        return reservation_link in browser.get(
            "/admin/routing/reservation/?held=all&status__exact=expired"
        ) and answer["requestId"] in browser.get("/admin/calls/callrecord/?outcome__exact=expired")

    while not shows_expired():
        assert datetime.now(UTC) < expires_at + timedelta(seconds=5), (
            "the admin did not show the reservation and its call record expired within 5 s of "
            "the TTL:\n" + local_stack["log"].read_text()
        )
        time.sleep(0.2)
    assert reservation_link not in browser.get("/admin/routing/reservation/?status__exact=active")


def _group_gone_within(process, seconds: float) -> float | None:
    """Seconds until no process of make's group is left, or None if some outlive `seconds`."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        process.poll()  # make itself, once it exits, is gone when reaped
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return time.monotonic() - started
        time.sleep(0.1)
    return None


def test_make_run_is_ready_with_its_worker_and_all_gone_within_10_s_of_a_sigterm(local_stack):
    base_url = _wait_until_serving(local_stack)
    # /readyz is green only once the worker has run beat's sweep.
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(base_url + "/readyz", timeout=5) as response:
                ready = json.loads(response.read())
                break
        except urllib.error.HTTPError as error:
            ready = json.loads(error.read())
        assert time.monotonic() < deadline, f"not ready: {ready}\n" + local_stack["log"].read_text()
        time.sleep(0.5)
    assert ready == {
        "status": "ready",
        "checks": {"database": "ok", "broker": "ok", "worker": "ok"},
    }

    # What a timeout, an IDE's stop button or a container stop does.
    os.killpg(local_stack["process"].pid, signal.SIGTERM)
    seconds = _group_gone_within(local_stack["process"], 10)

    assert seconds is not None, (
        "processes left 10 s after SIGTERM:\n" + local_stack["log"].read_text()
    )


def test_make_run_stops_everything_when_its_worker_dies(local_stack):
    _wait_until_serving(local_stack)
    group = local_stack["process"].pid
    # -ww: whole command lines, however long the checkout's path (ps cuts them at 80 columns).
    listing = subprocess.run(
        ["ps", "-ww", "-eo", "pid=,pgid=,args="], capture_output=True, text=True, check=True
    ).stdout
    processes = [line.split(None, 2) for line in listing.splitlines()]
    processes = [fields for fields in processes if len(fields) == 3]
    workers = [
        pid
        for pid, pgid, args in processes
        # The celery process itself, not the recipe's shell whose script names it too.
        if pgid == str(group)
        and "celery -A config worker" in args
        and not args.startswith(("/bin/bash", "bash"))
    ]
    assert len(workers) == 1, listing

    os.kill(int(workers[0]), signal.SIGKILL)  # a crash: no clean-up of its own

    # The demo does not go on serving pings with nothing to expire their records.
    assert _group_gone_within(local_stack["process"], 10) is not None, local_stack[
        "log"
    ].read_text()
    assert local_stack["process"].returncode != 0
