"""A gunicorn worker, once it has loaded the application, takes it out of the garbage collector's
full collections (config/gunicorn.py's post_worker_init): a full collection that walks every
object of the loaded application pauses each request in the worker for tens of milliseconds.
And its threads hand the GIL over every millisecond, not every five.

Run in a process of its own, as a worker is: freezing is for the process's whole life."""

import json
import os
import subprocess
import sys

from django.conf import settings

WORKER = """
import gc, json, sys
from config.wsgi import application  # what a gunicorn worker loads
import config.gunicorn as hooks
loaded_before = "config.urls" in sys.modules
hooks.post_worker_init(worker=None)
print(json.dumps({
    "urls_loaded_before": loaded_before,
    "urls_loaded": "calls.ping.views" in sys.modules,
    "frozen": gc.get_freeze_count(),
    "tracked": len(gc.get_objects()),
    "switch_interval": sys.getswitchinterval(),
}))
"""


def test_a_worker_loads_its_views_then_freezes_them_out_of_full_collections(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "SECRET_KEY": "test-only",
        "DEBUG": "false",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
    }
    output = subprocess.run(
        [sys.executable, "-c", WORKER], env=env, cwd=settings.BASE_DIR,
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    worker = json.loads(output.strip().splitlines()[-1])
    assert not worker["urls_loaded_before"]  # Django would load them at the first request...
    assert worker["urls_loaded"]  # ...so the hook loads them before it freezes
    # The application's objects are frozen; a full collection walks only what is left.
    assert worker["frozen"] > 50_000
    assert worker["tracked"] < worker["frozen"] / 10
    # Threads back from the database take the GIL within a millisecond, not Python's 5 ms.
    assert worker["switch_interval"] == 0.001
