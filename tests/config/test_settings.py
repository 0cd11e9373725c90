"""Settings that make no sense stop start-up with a message naming them, never a traceback
that names nothing, and never a value that quietly means something else."""

import os
import subprocess
import sys

import pytest
from django.conf import settings

POSTGRES = "postgres://postgres@127.0.0.1:5432/anything"


def start_up(code: str = "from config import settings", **environment: str) -> str:
    """What loading the settings prints, under this environment (nothing is connected to)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_",))}
    env.update(DEBUG="true", **environment)
    result = subprocess.run(
        [sys.executable, "-c", f"{code}; print('loaded')"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=settings.BASE_DIR,
    )
    return result.stdout + result.stderr


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        # libpq reads 0 as "wait for ever": a stopped database would hang every request.
        (
            {"DATABASE_URL": POSTGRES, "DATABASE_CONNECT_TIMEOUT": "0"},
            "DATABASE_CONNECT_TIMEOUT must be at least 1, not 0.",
        ),
        # Past the column's range every reserving ping failed with a 500.
        (
            {"RESERVATION_TTL_SECONDS": "3000000000"},
            "RESERVATION_TTL_SECONDS must be at most 86400, not 3000000000.",
        ),
        (
            {"CELERY_TASK_TIME_LIMIT": "60", "CELERY_TASK_SOFT_TIME_LIMIT": "60"},
            "CELERY_TASK_SOFT_TIME_LIMIT must be below CELERY_TASK_TIME_LIMIT",
        ),
        (
            {
                "DATABASE_URL": POSTGRES,
                "DATABASE_POOL": "true",
                "DATABASE_POOL_MIN_SIZE": "9",
                "DATABASE_POOL_MAX_SIZE": "4",
            },
            "DATABASE_POOL_MIN_SIZE (9) must not be above DATABASE_POOL_MAX_SIZE (4).",
        ),
        # A traceback from the URL parser, or a database whose every ping would fail.
        ({"DATABASE_URL": "postgres://u@h:notaport/db"}, "DATABASE_URL cannot be read"),
        ({"DATABASE_URL": "mysql://u@h/db"}, "DATABASE_URL must be a postgres:// or sqlite://"),
        # Was a ValueError from logging that named no setting.
        (
            {"LOG_LEVEL": "verbose"},
            "LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, not 'VERBOSE'.",
        ),
    ],
)
def test_it_refuses_a_setting_that_makes_no_sense_by_name(environment, message):
    output = start_up(**environment)
    assert message in output
    assert "loaded" not in output


def test_a_log_level_in_lower_case_is_read():
    assert "loaded" in start_up(LOG_LEVEL="debug").splitlines()


def test_a_process_starts_where_the_broker_folder_cannot_be_made():
    # A web process on a read-only deploy with a Redis broker needs no broker folder.
    output = start_up(
        "import django; django.setup(); import config.celery",
        DJANGO_SETTINGS_MODULE="config.settings",
        CELERY_BROKER_URL="redis://127.0.0.1:6379/0",
        CELERY_BROKER_FOLDER="/proc/no-such-folder/celery-broker",
    )
    assert "loaded" in output.splitlines()


def test_the_deploy_check_warns_of_unsigned_webhooks_and_unshared_limits():
    output = start_up(
        "import django; django.setup(); from django.core.management import call_command; "
        "call_command('check', '--deploy')",
        DJANGO_SETTINGS_MODULE="config.settings",
        TWILIO_AUTH_TOKEN="",
        CACHE_URL="",
    )
    assert "calls.W001" in output and "TWILIO_AUTH_TOKEN is empty" in output
    assert "vendors.W001" in output and "CACHE_URL is empty" in output
    configured = start_up(
        "import django; django.setup(); from django.core.management import call_command; "
        "call_command('check', '--deploy')",
        DJANGO_SETTINGS_MODULE="config.settings",
        TWILIO_AUTH_TOKEN="a-token",
        CACHE_URL="redis://127.0.0.1:6379/0",
    )
    assert "calls.W001" not in configured and "vendors.W001" not in configured
