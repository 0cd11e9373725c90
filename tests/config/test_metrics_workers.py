"""Metrics under gunicorn with several worker processes: any worker's scrape counts them all.

Runs the production server (config/gunicorn.py) on a SQLite file of its own, from loopback.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import DEMO_KEY, PING_URL

WORKERS = 3


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    port = _free_port()
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_1.db").write_bytes(b"left over from an earlier run")
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "SECRET_KEY": "test-only",
        "ALLOWED_HOSTS": "127.0.0.1",
        "DEBUG": "false",
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "WEB_CONCURRENCY": str(WORKERS),
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "LOG_LEVEL": "WARNING",
    }
    manage = [sys.executable, "manage.py"]
    for command in (["migrate", "--noinput", "-v0"], ["seed_demo"]):
        subprocess.run(manage + command, env=env, cwd=settings.BASE_DIR, check=True,
                       capture_output=True, timeout=120)  # fmt: skip
    gunicorn = Path(sys.executable).with_name("gunicorn")
    process = subprocess.Popen(
        [str(gunicorn), "-c", "config/gunicorn.py"],
        env=env,
        cwd=settings.BASE_DIR,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for(
            lambda: _get(base + "/healthz")[0] == 200 and len(_workers(process.pid)) == WORKERS
        )
        yield base, process, metrics_dir
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_for(condition, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError("the server did not come up")


def _get(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read().decode()


def _ping(base, body) -> int:
    request = urllib.request.Request(
        base + PING_URL,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def _workers(master_pid: int) -> list[int]:
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    return [int(pid) for pid in children]


def _samples(text: str) -> dict:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _batch(base, phones) -> None:
    for _ in range(6):
        assert _ping(base, {"vendorKey": "00000000-0000-4000-8000-000000000000"}) == 401
    for _ in range(3):
        assert _ping(base, {"vendorKey": DEMO_KEY}) == 200
    for phone in phones:
        assert _ping(base, {"vendorKey": DEMO_KEY, "phoneNumber": phone}) == 200


def test_it_counts_every_workers_pings_even_after_a_worker_dies(server):
    base, process, metrics_dir = server
    _batch(base, ["4805550100", "4805550101"])
    served = [pid for pid in _workers(process.pid) if (metrics_dir / f"counter_{pid}.db").exists()]
    assert served, "no worker wrote its counters"
    os.kill(served[0], signal.SIGKILL)  # gunicorn replaces it; its counts must stay
    _wait_for(
        lambda: len(_workers(process.pid)) == WORKERS and served[0] not in _workers(process.pid)
    )
    _batch(base, ["4805550102", "4805550103"])

    # Several scrapes, served by whichever workers accept them: all agree.
    scrapes = [_samples(_get(base + "/metrics")[1]) for _ in range(6)]
    assert len({json.dumps(sorted(map(str, s.items()))) for s in scrapes}) == 1
    samples = scrapes[0]

    def pings(outcome, status):
        return samples[("callrouting_pings_total", (("outcome", outcome), ("status", status)))]

    assert pings("refused", "401") == 12
    assert pings("key_validation", "200") == 6
    assert pings("reserved", "200") == 3  # AZ has three agents
    assert pings("no_agent", "200") == 1
    assert samples[("callrouting_ping_duration_seconds_count", (("outcome", "refused"),))] == 12
    assert samples[("callrouting_reservations_live", ())] == 3
    assert samples[("callrouting_agents_free", (("state", "AZ"),))] == 0
    assert samples[("callrouting_agents_free", (("state", "TX"),))] == 10
    # The stale file from "an earlier run" was removed at start-up, not added in.
    assert not (metrics_dir / "counter_1.db").exists()
