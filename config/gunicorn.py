"""Gunicorn settings for production: `gunicorn -c config/gunicorn.py`.

Prometheus metrics from several worker processes: every worker writes its counters to files in
PROMETHEUS_MULTIPROC_DIR, and a scrape of /metrics, served by any worker, adds them up. The
directory must exist before the workers start and be emptied at each start of the server, or
the counters of a previous run would be counted again. If it is not set, a fresh temporary
directory is made for this server. A worker that exits is marked dead, so its figures stay in
the counters but no gauge keeps its last value.

Worker class, worker and thread counts: see docs/operations.md. Any of these can be
overridden on the command line (`gunicorn -c config/gunicorn.py -w 4 ...`).
"""

import gc
import os
import shutil
import sys
import tempfile
from pathlib import Path

from config.env import env_bool, env_int, env_str

wsgi_app = "config.wsgi:application"
bind = env_str("GUNICORN_BIND", "127.0.0.1:8000")
workers = env_int("WEB_CONCURRENCY", 2, minimum=1)
# Chosen with `make bench`: threads overlap a ping's waits on PostgreSQL and Redis, and gthread
# keeps vendors' connections alive; 2 workers x 4 threads did best on 2 cores (docs/performance.md).
worker_class = env_str("GUNICORN_WORKER_CLASS", "gthread")
threads = env_int("GUNICORN_THREADS", 4, minimum=1)
# A worker stuck longer than this is killed and replaced.
timeout = env_int("GUNICORN_TIMEOUT", 30, minimum=1)
graceful_timeout = 20
# Behind config/nginx (as `make serve` runs it), nginx refuses malformed and oversized requests
# itself, in the contract's envelope; gunicorn's own refusals, stricter in places (a header count,
# a two-letter method), would answer in HTML. nginx bounds every line at 8 KiB and the headers at
# 32 KiB, so nothing unbounded reaches gunicorn. Alone in front, gunicorn keeps its limits.
if env_bool("GUNICORN_BEHIND_NGINX", False):
    limit_request_line = 0
    limit_request_fields = 32768
    limit_request_field_size = 0
    permit_unconventional_http_method = True
# Access logs belong to the load balancer; our own log lines carry the request id.
accesslog = None
errorlog = "-"

_owned_multiproc_dir = False
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # Before any worker imports prometheus_client, which reads the variable at import.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="callrouting-metrics-")
    _owned_multiproc_dir = True

# Imported here, not in child_exit: an import inside a signal handler that interrupted another
# import can find the module half-initialized (seen when stopping the server).
from prometheus_client import multiprocess  # noqa: E402


def on_starting(server):
    """Start each run of the server with no counters left from the previous one."""
    directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()


def post_worker_init(worker):
    """Take the loaded application out of the garbage collector's full collections: a worker
    holds some 125,000 objects after start-up that live as long as it does, and each full
    collection walked them all, a pause of 60 to 90 ms for every request in the worker (seen as
    the steady-rate p99's worst misses; docs/performance.md). Frozen, a full collection takes
    about a millisecond. The URL configuration, and with it every view, is loaded first: Django
    would load it at the first request, after the freeze."""
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018  (a lazy property: reading it loads the views)
    gc.collect()
    gc.freeze()
    # A thread back from PostgreSQL or Redis waits for the GIL while a sibling runs Python, up
    # to the switch interval (5 ms by default) each time, and a ping comes back three times:
    # 1 ms halved the pings over 15 ms at a steady rate (docs/performance.md).
    sys.setswitchinterval(0.001)


def child_exit(server, worker):
    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if _owned_multiproc_dir:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
