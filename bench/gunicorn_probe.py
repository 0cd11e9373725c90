"""config/gunicorn.py plus probes, for `make bench-steady` (bench/steady_tail.py): each worker
notes every request's start and end inside it and every garbage collection's start and end
(time.monotonic() seconds, comparable across processes) and writes them, as it exits, to a file
of its own in BENCH_PROBE_DIR. BENCH_SWITCH_INTERVAL_MS replaces the workers' GIL switch interval
(1 ms in production; Python's default is 5), to compare.

`gunicorn -c bench/gunicorn_probe.py`, from the repository's root."""

import gc
import os
import sys
import time
from pathlib import Path

from config.gunicorn import *  # noqa: F403  (the production settings and hooks, unchanged)
from config.gunicorn import post_worker_init as config_post_worker_init

_lines: list[str] = []


def post_fork(server, worker):
    started: dict[int, float] = {}

    def collected(phase, info):
        if phase == "start":
            started[info["generation"]] = time.monotonic()
        elif info["generation"] in started:
            begun = started.pop(info["generation"])
            _lines.append(f"gc {info['generation']} {begun:.6f} {time.monotonic():.6f}\n")

    gc.callbacks.append(collected)


def pre_request(worker, req):
    req.probe_started = time.monotonic()


# The production hook, then the probe's.
def post_worker_init(worker):  # type: ignore[no-redef]
    config_post_worker_init(worker)
    if os.environ.get("BENCH_SWITCH_INTERVAL_MS"):  # to compare with the production's 1 ms
        sys.setswitchinterval(float(os.environ["BENCH_SWITCH_INTERVAL_MS"]) / 1000)


def post_request(worker, req, environ, resp):
    _lines.append(f"req {req.path} {req.probe_started:.6f} {time.monotonic():.6f}\n")


def worker_exit(server, worker):
    directory = Path(os.environ["BENCH_PROBE_DIR"])
    (directory / f"worker-{os.getpid()}.txt").write_text("".join(_lines))
