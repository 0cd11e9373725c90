"""Log lines: JSON by default in production, each carrying the request id of its request."""

import io
import json
import logging
import os
import subprocess
import sys

import pytest
from django.conf import settings

from calls.ping import views


@pytest.fixture
def console():
    """What the console handler writes, as configured from settings.LOGGING."""
    handler = next(h for h in logging.getLogger().handlers if h.get_name() == "console")
    stream = io.StringIO()
    previous = handler.setStream(stream)
    yield stream
    handler.setStream(previous)


def test_it_logs_json_with_the_request_id_when_debug_is_off(console, db, ping):
    assert settings.LOG_FORMAT == "json"
    response = ping({"vendorKey": "00000000-0000-4000-8000-000000000000"})
    assert response.status_code == 401
    lines = [json.loads(line) for line in console.getvalue().splitlines()]
    refusal = next(line for line in lines if line["message"].startswith("Refused"))
    assert refusal["request_id"] == response["X-Request-ID"]
    assert refusal["level"] == "INFO"
    assert refusal["logger"] == "config.errors"
    assert refusal["timestamp"].endswith("+00:00")


def test_every_line_about_a_failed_request_carries_its_request_id(console, ping, monkeypatch):
    # Django's own "Internal Server Error" line is written after the middleware has returned.
    def crash(**kwargs):
        raise RuntimeError("database on fire")

    monkeypatch.setattr(views, "vendor_ping", crash)

    response = ping({"vendorKey": "00000000-0000-4000-8000-000000000000"})

    assert response.status_code == 500
    lines = [json.loads(line) for line in console.getvalue().splitlines()]
    errors = [line for line in lines if line["level"] == "ERROR"]
    assert {line["logger"] for line in errors} == {"config.errors", "django.request"}
    assert {line["request_id"] for line in errors} == {response["X-Request-ID"]}


def test_it_logs_outside_a_request_with_a_dash_for_the_id(console):
    logging.getLogger("calls").warning("a background note")
    line = json.loads(console.getvalue().splitlines()[-1])
    assert line["message"] == "a background note"
    assert line["request_id"] == "-"


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({"DEBUG": "false"}, "json"),
        ({"DEBUG": "true"}, "plain"),
        ({"DEBUG": "true", "LOG_FORMAT": "json"}, "json"),
        ({"DEBUG": "false", "LOG_FORMAT": "xml"}, "LOG_FORMAT must be json or plain, not 'xml'."),
    ],
)
def test_it_chooses_the_log_format_from_the_environment(environment, expected):
    env = {key: value for key, value in os.environ.items() if key != "LOG_FORMAT"}
    env.update(SECRET_KEY="x", **environment)
    result = subprocess.run(
        [sys.executable, "-c", "from config import settings; print(settings.LOG_FORMAT)"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=settings.BASE_DIR,
    )
    assert expected in (result.stdout + result.stderr)
