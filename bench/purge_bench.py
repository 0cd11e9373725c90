"""`make bench-purge`: ping p99 at a steady rate while retention purges a million call records.

Seeds a database of its own (BENCH_PURGE_DATABASE_URL) as `make bench` does, adds BENCH_ROWS
(1,000,000) call records of a month long past (the seeding of `make bench-export`), starts the
production server on it, and sends pings on a schedule (bench/openloop.py) at BENCH_PURGE_RATE
(200) a second while `manage.py purge_call_records` archives the month and deletes it in
batches. The purge is paused (SIGSTOP) every other window of 5 s, so the pings' latency with
and without it is measured in alternating windows of the same machine state (others' load on
a shared machine comes and goes). Prints p50, p99 and the worst latency of each set, and the
purge's pace.
"""

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DATABASE_URL = os.environ.get(
    "BENCH_PURGE_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/callrouting_bench_purge"
)
os.environ["BENCH_PING_DATABASE_URL"] = DATABASE_URL  # bench.run's helpers use it

import psycopg  # noqa: E402

from bench import run  # noqa: E402
from bench.export_bench import PERIOD_START, SEED_SQL  # noqa: E402
from bench.openloop import open_loop  # noqa: E402
from tests.servers import RedisServer, free_port  # noqa: E402

ROWS = int(os.environ.get("BENCH_ROWS", "1000000"))
RATE = float(os.environ.get("BENCH_PURGE_RATE", "200"))
WINDOW_SECONDS = 5
MAX_PURGE_SECONDS = int(os.environ.get("BENCH_PURGE_MAX_SECONDS", "900"))


def seed_old_records() -> None:
    started = time.monotonic()
    with psycopg.connect(DATABASE_URL, autocommit=True, connect_timeout=5) as conn:
        vendors = [row[0] for row in conn.execute("SELECT id FROM vendors_vendor ORDER BY id")]
        agents = [row[0] for row in conn.execute("SELECT id FROM routing_agent ORDER BY id")]
        conn.execute(
            SEED_SQL,
            {"vendors": vendors, "agents": agents[:20], "start": PERIOD_START, "rows": ROWS},
        )
        conn.execute("VACUUM ANALYZE")
    seconds = time.monotonic() - started
    print(f"Seeded {ROWS:,} call records of {PERIOD_START[:7]} in {seconds:.0f} s")


def figures(latencies: list[float]) -> str:
    ordered = sorted(latencies)
    if not ordered:
        return "no answers"
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return (
        f"{len(ordered)} pings, p50 {statistics.median(ordered):.2f} ms, p99 {p99:.2f} ms, "
        f"max {ordered[-1]:.2f} ms"
    )


def main() -> None:
    redis = RedisServer()
    redis.start()
    env = run.server_env(redis.url)
    port = free_port()
    server = None
    archive = Path(tempfile.mkdtemp(prefix="purge-archive-"))
    try:
        run.seed_database(env)
        seed_old_records()
        server = run.start_server(env, port)
        bodies = run.ping_bodies()

        def pings(seconds: int) -> dict:
            return open_loop(host="127.0.0.1", port=port, path="/functions/v1/vendors-ping",
                             bodies=bodies, rate=RATE, seconds=seconds, latencies=True)  # fmt: skip

        pings(3)  # warm-up
        with psycopg.connect(DATABASE_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute("ANALYZE")
        print(f"Pings at {RATE:.0f}/s on a schedule; the server: {run.WORKERS} x {run.THREADS}")
        started = time.monotonic()
        purge = subprocess.Popen(
            [sys.executable, "manage.py", "purge_call_records", "--days", "30"],
            # No statement timeout, so no client deadline either: a purge resumed after a pause
            # would find its statement's deadline passed while it was stopped.
            cwd=REPO, env={**env, "CALL_RECORD_ARCHIVE_DIR": str(archive),
                           "DATABASE_STATEMENT_TIMEOUT_MS": "0"},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        latencies: dict[bool, list[float]] = {True: [], False: []}
        windows: dict[bool, list[float]] = {True: [], False: []}
        errors = 0
        purging = True
        paused_seconds = 0.0
        while purge.poll() is None and time.monotonic() - started < MAX_PURGE_SECONDS:
            if not purging:
                purge.send_signal(signal.SIGSTOP)
            window = pings(WINDOW_SECONDS)
            if not purging:
                purge.send_signal(signal.SIGCONT)
                paused_seconds += WINDOW_SECONDS
            latencies[purging] += window["latencies_ms"]
            windows[purging].append(window["p99_ms"])
            errors += window["errors"] + window["non_2xx"]
            purging = not purging
        output, _ = purge.communicate(timeout=MAX_PURGE_SECONDS)
        seconds = time.monotonic() - started - paused_seconds
        for state, name in ((False, "purge paused"), (True, "purge running")):
            print(f"  {name}: {figures(latencies[state])}")
            shown = ", ".join(f"{p:.0f}" for p in windows[state])
            print(f"    p99 of each {WINDOW_SECONDS} s window, ms: {shown}")
        print(f"  errors and non-2xx answers: {errors}")
        print("  purge: " + output.strip().replace("\n", "\n         "))
        size = sum(path.stat().st_size for path in archive.iterdir())
        print(
            f"  {seconds:.0f} s of purging (pauses left out): {ROWS / seconds:,.0f} rows/s "
            f"archived and deleted; archive {size / 1e6:.1f} MB"
        )
        database = urlsplit(DATABASE_URL).path.lstrip("/")
        print(f"  (database {database}; load average now {run._load()})")
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        redis.stop()
        for path in archive.iterdir():
            path.unlink()
        archive.rmdir()


if __name__ == "__main__":
    main()
