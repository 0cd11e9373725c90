#!/usr/bin/env python
import os
import sys
from pathlib import Path

# This machine's local settings (DEBUG on, a random key), written by `make install` and
# git-ignored. Only manage.py reads it, and the environment wins over it: gunicorn and Celery,
# which serve production, never read it, so production still refuses to start without a key.
LOCAL_SETTINGS_FILE = Path(__file__).resolve().parent / ".env.local"


def load_local_settings(path: Path) -> None:
    """`KEY=value` lines into the environment, where not set already; `#` comments skipped.

    Here, not in config/: importing the config package loads the settings, too early.
    """
    if not path.is_file():
        return
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep or not name.strip():
            sys.exit(f"{path}, line {number}: expected KEY=value.")
        os.environ.setdefault(name.strip(), value.strip())


def main() -> None:
    load_local_settings(LOCAL_SETTINGS_FILE)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
