"""A fresh clone's manage.py commands work as the docs show them once `make install` has run
(it writes a git-ignored .env.local: DEBUG on, a random key), and production, which never reads
that file, still refuses to start without a SECRET_KEY."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

# What a developer's shell or CI may hold that a fresh clone on a new machine would not.
NOT_ON_A_NEW_MACHINE = (
    "DJANGO_",
    "SECRET_KEY",
    "DEBUG",
    "DATABASE_",
    "CELERY_",
    "CACHE_URL",
    "MEDIA_ROOT",
    "REQUIRE_POSTGRES",
    "PYTEST_",
)
MISSING_KEY = "SECRET_KEY must be set when DEBUG is off."


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    """The project's files as a fresh clone has them: tracked and not ignored, nothing else."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=settings.BASE_DIR,
        capture_output=True,
        check=True,
    ).stdout.decode()
    target = tmp_path_factory.mktemp("fresh-clone")
    for name in filter(None, listed.split("\0")):
        source = settings.BASE_DIR / name
        if source.is_file() and not name.startswith(("tests/", "bench/")):
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def run(clone: Path, *command: str, **environment: str) -> subprocess.CompletedProcess:
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(NOT_ON_A_NEW_MACHINE)
    }
    env.update(environment)
    return subprocess.run(command, cwd=clone, env=env, capture_output=True, text=True, timeout=120)


def manage(clone: Path, *arguments: str) -> subprocess.CompletedProcess:
    return run(clone, sys.executable, "manage.py", *arguments)


def make_install(clone: Path) -> subprocess.CompletedProcess:
    # The virtualenv is this one: only what `make install` adds to it is run here.
    return run(clone, "make", "-o", ".venv/.installed", "install")


def test_the_readmes_commands_work_on_a_fresh_clone_after_make_install(clone):
    assert MISSING_KEY in manage(clone, "check").stderr  # as the new user found it

    installed = make_install(clone)
    assert installed.returncode == 0, installed.stderr

    assert manage(clone, "migrate", "--noinput").returncode == 0
    assert manage(clone, "seed_demo").returncode == 0
    agent = manage(clone, "agent_login", "Demo Agent AZ 1")
    assert agent.returncode == 0, agent.stderr
    assert "password" in agent.stdout.lower()
    exported = manage(
        clone, "export_calls", "--since", "2025-09-01", "--until", "2025-09-30", "--format", "csv"
    )
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout.startswith("request_id,received_at,vendor,")
    shell = manage(clone, "shell", "-c", "from django.conf import settings; print(settings.DEBUG)")
    assert (shell.returncode, shell.stdout.splitlines()[-1]) == (0, "True")


def test_make_install_writes_a_random_key_once_in_a_file_git_ignores(clone):
    make_install(clone)
    written = (clone / ".env.local").read_text()
    assert "DEBUG=true" in written.splitlines()
    key = next(line for line in written.splitlines() if line.startswith("SECRET_KEY="))
    assert len(key) > len("SECRET_KEY=") + 40
    assert (clone / ".env.local").stat().st_mode & 0o077 == 0  # for this user only

    make_install(clone)
    assert (clone / ".env.local").read_text() == written  # kept: sessions stay signed
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", ".env.local"], cwd=settings.BASE_DIR, check=False
    )
    assert ignored.returncode == 0


def test_the_environment_wins_over_the_local_file(clone):
    make_install(clone)
    shell = run(
        clone,
        sys.executable,
        "manage.py",
        "shell",
        "-c",
        "from django.conf import settings; print(settings.DEBUG, settings.SECRET_KEY)",
        DEBUG="false",
        SECRET_KEY="from-the-environment",
    )
    assert shell.stdout.splitlines()[-1].split() == ["False", "from-the-environment"]


@pytest.mark.parametrize(
    "entry_point",
    [
        "import config.wsgi",
        "import config.celery; config.celery.app.loader.import_default_modules()",
    ],
    ids=["gunicorn", "celery"],
)
def test_production_never_reads_the_local_file_and_still_needs_a_key(clone, entry_point):
    make_install(clone)
    assert (clone / ".env.local").exists()

    started = run(clone, sys.executable, "-c", entry_point)

    assert started.returncode != 0
    assert MISSING_KEY in started.stderr
