"""Settings for the test suite: the real settings with a throwaway key and fast hashing."""

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("SECRET_KEY", "insecure-test-only-key")
if "CELERY_BROKER_FOLDER" not in os.environ:
    # With the filesystem broker, tests never share the local demo's queue.
    _broker_folder = tempfile.mkdtemp(prefix="callrouting-test-broker-")
    os.environ["CELERY_BROKER_FOLDER"] = _broker_folder
    atexit.register(shutil.rmtree, _broker_folder, ignore_errors=True)

from config.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # A file, not the in-memory default: threads and worker processes in the tests then share the
    # database the way a real deployment does, with IMMEDIATE transactions and a busy timeout.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / ".test-db.sqlite3")}  # noqa: F405
