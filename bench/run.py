"""`make bench`: the production server under load from loopback, with figures to compare.

Starts gunicorn (production settings, PostgreSQL with persistent connections or the pool, Redis
as the shared cache) on a database of its own, seeded with the demo data plus agents in every
state and a short TTL so the agents never run out. Then wrk drives, on the same server: a trivial
endpoint with no database, and pings spread over every state, at each connection count. Prints
pings/s, p50, p99, the ratio of pings/s to the trivial endpoint, the CPU per request of the web
processes and of PostgreSQL, the same for two requests that do only part of a ping's work (the
references, at the first connection count), then what PostgreSQL alone does with the ping's
statement under pgbench, and, after the run, the count of overlapping reservations (must be 0).

Everything is read from BENCH_* environment variables (see `make help` and docs/performance.md).
"""

import contextlib
import itertools
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.openloop import open_loop  # noqa: E402
from routing.geography import AREA_CODE_STATES  # noqa: E402
from tests.servers import RedisServer, free_port, wait_for_port  # noqa: E402

DATABASE_URL = os.environ.get(
    "BENCH_PING_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/callrouting_bench_ping"
)
DURATION = int(os.environ.get("BENCH_SECONDS", "15"))  # per endpoint and connection count
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))  # DURATION split into alternating rounds
CONNECTIONS = [int(c) for c in os.environ.get("BENCH_CONNECTIONS", "16,64").split(",")]
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
THREADS = int(os.environ.get("BENCH_THREADS", "4"))
WORKER_CLASS = os.environ.get("BENCH_WORKER_CLASS", "gthread")
POOL = os.environ.get("BENCH_DATABASE_POOL", "false")
TTL_SECONDS = int(os.environ.get("BENCH_TTL_SECONDS", "1"))
AGENTS_PER_STATE = int(os.environ.get("BENCH_AGENTS_PER_STATE", "80"))
# The ping's statement alone, under pgbench, after the web runs: clients and seconds.
STATEMENT_CLIENTS = THREADS * WORKERS
STATEMENT_SECONDS = int(os.environ.get("BENCH_STATEMENT_SECONDS", "10"))
ALL_STATES_KEY = "3f1c2a9e-7b4d-4e8a-9c61-2d5b8e0f4a17"
# The vendor with every ping policy on (seed_bench --policies-vendor-key), limits never reached:
# its pings, beside the same pings without policies, at the first connection count
# (BENCH_POLICIES=false to skip).
POLICIES_KEY = "b3e7c0de-5a1f-4c2b-9d8e-7f6a5b4c3d2e"
POLICIES = os.environ.get("BENCH_POLICIES", "true") == "true"
# BENCH_POLICIES_CAPS=false: that vendor without caps, to tell their cost from the others'.
POLICIES_CAPS = os.environ.get("BENCH_POLICIES_CAPS", "true") == "true"
# Requests that do part of a ping's work, measured beside it at the first connection count
# (BENCH_REFERENCES=false to skip): a key validation (the guide's body without a phone number: the
# key checked on the shared cache, no database), and the bench's round-trips endpoint (the ping's
# own bodies read and keys checked, then one statement that reads nothing): the round trips every
# ping makes, and nothing else, so no ping can be faster on this server.
REFERENCES = os.environ.get("BENCH_REFERENCES", "true") == "true"
KEY_VALIDATION_BODY = json.dumps({"vendorKey": ALL_STATES_KEY})
PYTHON = sys.executable
# The ORM transaction path (bench/views.py: BenchOrmPingView), beside the ping at the first
# connection count (BENCH_ORM=false to skip).
ORM = os.environ.get("BENCH_ORM", "true") == "true"
# The steady-rate phase: pings sent on a schedule at BENCH_STEADY_FRACTION (0.5) of the pings/s
# measured at the first connection count, for BENCH_STEADY_SECONDS (15), from at most
# BENCH_STEADY_CONNECTIONS (64) connections; the p99 from the moment each was due.
STEADY_FRACTION = float(os.environ.get("BENCH_STEADY_FRACTION", "0.5"))
STEADY_SECONDS = int(os.environ.get("BENCH_STEADY_SECONDS", "15"))
STEADY_CONNECTIONS = int(os.environ.get("BENCH_STEADY_CONNECTIONS", "64"))
# pgbench's simplest write transaction (-N: one update, one insert, commit), the same clients
# and seconds as the ping's statement: PostgreSQL's CPU per ping is compared with its CPU.
WRITE_SCRIPT_SECONDS = STATEMENT_SECONDS
OUTPUT = Path(os.environ.get("BENCH_OUTPUT") or REPO / "bench-results.json")
# The targets, each a ratio (or a figure) inside one run.
TARGETS = {
    "ping_per_floor": (">=", 0.70),
    "db_cpu_per_ping_per_pgbench_write": ("<=", 2.0),
    "steady_p99_ms": ("<=", 15.0),
    "ping_per_orm": (">=", 3.0),
    "overlaps": ("==", 0),
    # Pings with every policy on against pings without, same run: within 10 % (issue of policies).
    "policies_vs_plain": (">=", -0.10),
}


def recreate_database(url: str) -> None:
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        raise SystemExit(f"BENCH_PING_DATABASE_URL must name a plain database, not {name!r}")
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")


def server_env(redis_url: str) -> dict:
    return {
        **os.environ,
        "DATABASE_URL": DATABASE_URL,
        # The bench's own redis-server: the cache in one database, the broker in another (what
        # the server enqueues waits there, unconsumed, and goes when the bench stops it).
        "CACHE_URL": f"{redis_url}/0",
        "CELERY_BROKER_URL": f"{redis_url}/1",
        # Persistent connections, one per thread (kept CONN_MAX_AGE seconds); with true, the
        # pool, one connection per thread too, checked out and back at every request.
        "DATABASE_POOL": POOL,
        "DATABASE_POOL_MIN_SIZE": str(THREADS),
        "DATABASE_POOL_MAX_SIZE": str(THREADS),
        "DATABASE_PREPARE_THRESHOLD": os.environ.get("BENCH_PREPARE_THRESHOLD", "2"),
        "RESERVATION_TTL_SECONDS": str(TTL_SECONDS),
        # The limits are counted as in production but set out of the way of the load.
        "PING_RATE_LIMIT_PER_MINUTE": "100000000",
        "BENCH_ENDPOINTS": "true",
        # As recommended for production (docs/operations.md): the beat sweep alone expires records.
        "RESERVATION_EXPIRY_TASKS": os.environ.get("BENCH_EXPIRY_TASKS", "false"),
        "DEBUG": "false",
        "SECRET_KEY": "bench-only-not-a-secret",
        "ALLOWED_HOSTS": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }


def seed_database(env: dict, *seed_bench_options: str) -> None:
    """The bench's database made afresh: migrated, the demo data, the bench's agents in every
    state (and whatever `seed_bench_options` add)."""
    recreate_database(DATABASE_URL)
    manage(env, "migrate", "--noinput")
    manage(env, "seed_demo")
    manage(env, "seed_bench", "--agents-per-state", str(AGENTS_PER_STATE), *seed_bench_options)


def start_server(env: dict, port: int, *, config: str = "config/gunicorn.py",
                 **more_env: str) -> subprocess.Popen:  # fmt: skip
    """gunicorn with `config` (the production's by default) at the bench's sizes on
    127.0.0.1:`port`, in a session of its own (stop it with os.killpg); returned once it
    listens."""
    server = subprocess.Popen(
        [PYTHON, "-m", "gunicorn", "-c", config, "--backlog", "2048", "--log-level", "warning"],
        cwd=REPO,
        env={**env, "GUNICORN_BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": str(WORKERS),
             "GUNICORN_WORKER_CLASS": WORKER_CLASS, "GUNICORN_THREADS": str(THREADS), **more_env},
        start_new_session=True,
    )  # fmt: skip
    try:
        wait_for_port(port, timeout=30)
    except BaseException:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        raise
    return server


def manage(env: dict, *args: str) -> str:
    """Run a management command in the bench's environment; what it printed. Its log lines are
    shown only if it fails (the bench's Redis is gone by the time the last ones run)."""
    result = subprocess.run(
        [PYTHON, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True
    )
    if result.returncode:
        sys.stderr.write(result.stderr)
        result.check_returncode()
    return result.stdout


def lua_script(directory: Path, key: str = ALL_STATES_KEY, name: str = "ping.lua") -> Path:
    by_state: dict[str, list[str]] = {}
    for area_code, state in sorted(AREA_CODE_STATES.items()):
        by_state.setdefault(state, []).append(area_code)
    table = ",\n".join(
        "{" + ",".join(f'"{code}"' for code in codes) + "}" for codes in by_state.values()
    )
    script = directory / name
    script.write_text(
        (REPO / "bench" / "ping.lua")
        .read_text()
        .replace("--AREA_CODES--", table)
        .replace("--VENDOR_KEY--", key)
    )
    return script


def static_script(path: Path, body: str) -> Path:
    """A wrk script that posts the same JSON body every time."""
    path.write_text(
        f'wrk.method = "POST"\nwrk.body = {json.dumps(body)}\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    return path


def run_wrk(url: str, connections: int, script: Path | None, seconds: int) -> dict:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "5s"]
    if script is not None:
        command += ["-s", str(script)]
    output = subprocess.run(
        [*command, url], check=True, capture_output=True, text=True, timeout=seconds + 60
    ).stdout
    return parse_wrk(output)


def _found(pattern: str, output: str, flags: int = 0) -> str:
    """The first group of `pattern` in a tool's output, which must have it."""
    match = re.search(pattern, output, flags)
    if match is None:
        raise ValueError(f"No {pattern!r} in the output:\n{output}")
    return match[1]


def _milliseconds(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value)
    if match is None:
        raise ValueError(f"Not a wrk duration: {value!r}")
    number, unit = match.groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def parse_wrk(output: str) -> dict:
    rate = float(_found(r"Requests/sec:\s+([\d.]+)", output))
    requests = int(_found(r"(\d+) requests in", output))
    p50 = _milliseconds(_found(r"^\s+50%\s+(\S+)", output, re.M))
    p99 = _milliseconds(_found(r"^\s+99%\s+(\S+)", output, re.M))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors:.*", output)
    return {
        "rate": rate,
        "requests": requests,
        "p50": p50,
        "p99": p99,
        "non_2xx": int(bad[1]) if bad else 0,
        "socket_errors": errors[0] if errors else "",
    }


def median_run(runs: list[dict]) -> dict:
    """The median of each figure over the rounds; errors and non-2xx answers summed."""
    return {
        "rate": statistics.median(run["rate"] for run in runs),
        "p50": statistics.median(run["p50"] for run in runs),
        "p99": statistics.median(run["p99"] for run in runs),
        "web_ms": statistics.median(run["web_ms"] for run in runs),
        "database_ms": statistics.median(run["database_ms"] for run in runs),
        "non_2xx": sum(run["non_2xx"] for run in runs),
        "socket_errors": "; ".join(run["socket_errors"] for run in runs if run["socket_errors"]),
    }


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU the processes have used so far (those gone meanwhile count 0)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def web_pids(server_pid: int) -> list[int]:
    """The gunicorn master and its workers."""
    pids = [server_pid]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == server_pid:
                pids.append(int(stat.parent.name))
        except (OSError, ValueError):
            continue
    return pids


def database_pids(database: str) -> list[int]:
    """The PostgreSQL backends serving the bench's database (their title names it)."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            title = cmdline.read_bytes().decode(errors="replace")
        except OSError:
            continue
        if title.startswith("postgres: ") and f" {database} " in title:
            pids.append(int(cmdline.parent.name))
    return pids


def settle(server_pid: int, timeout: float = 3.0) -> None:
    """Wait until the web server has finished what the last run left it: wrk stops with requests
    still queued (an ORM ping's take 13 ms of CPU each), whose CPU would otherwise be charged to
    the next run."""
    web = web_pids(server_pid)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = cpu_seconds(web)
        time.sleep(0.2)
        if cpu_seconds(web) - before < 0.01:  # under 5 % of a core
            return


@contextlib.contextmanager
def cpu_spent(server_pid: int):
    """The CPU seconds the web server and the bench database's PostgreSQL backends spend in the
    block: {"web": ..., "database": ...}, filled when it ends. The backends are sampled: the web
    processes reconnect now and then, and a backend gone by the end would take its CPU with it."""
    web = web_pids(server_pid)
    web_before = cpu_seconds(web)
    spent: dict[str, float] = {}
    with BackendCpuSampler(urlsplit(DATABASE_URL).path.lstrip("/")) as backends:
        yield spent
    spent["web"] = cpu_seconds(web) - web_before
    spent["database"] = backends.seconds()


def measured_wrk(url, connections, script, seconds, server_pid) -> dict:
    """run_wrk, plus the CPU the web server and PostgreSQL spent per request meanwhile."""
    settle(server_pid)
    with cpu_spent(server_pid) as spent:
        run = run_wrk(url, connections, script, seconds)
    requests = max(run["requests"], 1)
    run["web_ms"] = spent["web"] * 1000 / requests
    run["database_ms"] = spent["database"] * 1000 / requests
    return run


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy (every core), from /proc/stat."""
    values = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle and iowait
    return (sum(values) - idle) / os.sysconf("SC_CLK_TCK")


def statement_alone(env: dict, directory: Path) -> dict | None:
    """pgbench running the ping's one statement (no web server): statements/s and the CPU the
    machine spent on each (pgbench's own included), or None without pgbench."""
    if shutil.which("pgbench") is None:
        return None
    script = directory / "statement.sql"
    script.write_text(manage(env, "ping_statement_pgbench", "--vendor-key", ALL_STATES_KEY))
    busy_before = machine_busy_seconds()
    output = subprocess.run(
        ["pgbench", "-n", "-M", "prepared", "-c", str(STATEMENT_CLIENTS), "-j", "2",
         "-T", str(STATEMENT_SECONDS), "-f", str(script), DATABASE_URL],
        check=True, capture_output=True, text=True, timeout=STATEMENT_SECONDS + 60,
    ).stdout  # fmt: skip
    busy = machine_busy_seconds() - busy_before
    done = int(_found(r"number of transactions actually processed: (\d+)", output))
    return {"rate": done / STATEMENT_SECONDS, "cpu_ms": busy * 1000 / max(done, 1)}


class BackendCpuSampler:
    """The CPU of a database's PostgreSQL backends over a run in which they come and go (pgbench
    connects its clients when it starts and leaves at the end): each backend's CPU is read every
    `interval` seconds and its last reading kept, so at most one interval of a backend's CPU is
    lost when it exits. New backends are looked for every ten intervals."""

    def __init__(self, database: str, interval: float = 0.1) -> None:
        self.database = database
        self.interval = interval
        self.before = {pid: cpu_seconds([pid]) for pid in database_pids(database)}
        self.last: dict[int, float] = dict(self.before)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        # Looking for new backends reads every process's command line: once a second only, so
        # the sampling takes no CPU worth counting from the runs it measures.
        pids: list[int] = []
        for sample in itertools.count():
            if self._stop.is_set():
                return
            if sample % 10 == 0:
                pids = database_pids(self.database)
            for pid in pids:
                if Path(f"/proc/{pid}").exists():
                    self.last[pid] = cpu_seconds([pid])
            time.sleep(self.interval)

    def __enter__(self) -> "BackendCpuSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def seconds(self) -> float:
        return sum(cpu - self.before.get(pid, 0.0) for pid, cpu in self.last.items())


def pgbench_write(directory: Path) -> dict | None:
    """pgbench's built-in simple write transaction (-N) on the bench's database: transactions/s
    and the CPU of its PostgreSQL backends per transaction (the same measure as a ping's)."""
    if shutil.which("pgbench") is None:
        return None
    subprocess.run(
        ["pgbench", "-i", "-q", "-s", "1", DATABASE_URL],
        check=True, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    with psycopg.connect(DATABASE_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute("VACUUM ANALYZE pgbench_accounts, pgbench_branches, pgbench_tellers")
    database = urlsplit(DATABASE_URL).path.lstrip("/")
    with BackendCpuSampler(database) as sampler:
        output = subprocess.run(
            ["pgbench", "-n", "-N", "-M", "prepared", "-c", str(STATEMENT_CLIENTS), "-j", "2",
             "-T", str(WRITE_SCRIPT_SECONDS), DATABASE_URL],
            check=True, capture_output=True, text=True, timeout=WRITE_SCRIPT_SECONDS + 60,
        ).stdout  # fmt: skip
    done = int(_found(r"number of transactions actually processed: (\d+)", output))
    return {
        "rate": done / WRITE_SCRIPT_SECONDS,
        "database_ms": sampler.seconds() * 1000 / max(done, 1),
    }


def ping_bodies(count: int = 20_000) -> list[str]:
    """Ping bodies as bench/ping.lua makes them: a state at random, one of its area codes."""
    by_state: dict[str, list[str]] = {}
    for area_code, state in sorted(AREA_CODE_STATES.items()):
        by_state.setdefault(state, []).append(area_code)
    states = list(by_state.values())
    chooser = random.Random()
    bodies = []
    for index in range(count):
        area = chooser.choice(chooser.choice(states))
        phone = f"+1{area}{chooser.randrange(10_000_000):07d}"
        bodies.append(
            json.dumps(
                {"vendorKey": ALL_STATES_KEY, "phoneNumber": phone,
                 "lead_id": f"steady-{index}", "source": "openloop"},
                separators=(",", ":"),
            )
        )  # fmt: skip
    return bodies


def steady_rate(port: int, rate: float, server_pid: int) -> dict:
    """The open-loop phase: the generator alone against the trivial endpoint first (its own p99
    and CPU at this rate: it is not the bottleneck if both are small), then pings."""

    def run(path: str, bodies: list[str], seconds: int) -> dict:
        return open_loop(host="127.0.0.1", port=port, path=path, bodies=bodies, rate=rate,
                         seconds=seconds, connections=STEADY_CONNECTIONS)  # fmt: skip

    generator = run("/functions/v1/bench-noop", ["{}"], min(5, STEADY_SECONDS))
    with cpu_spent(server_pid) as spent:
        pings = run("/functions/v1/vendors-ping", ping_bodies(), STEADY_SECONDS)
    answered = max(pings["answered"], 1)
    pings["web_ms"] = spent["web"] * 1000 / answered
    pings["database_ms"] = spent["database"] * 1000 / answered
    return {"generator": generator, "pings": pings}


def target_verdicts(figures: dict) -> list[tuple[str, float | None, str, float, bool | None]]:
    compare = {">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b, "==": lambda a, b: a == b}
    verdicts = []
    for name, (operator, target) in TARGETS.items():
        value = figures.get(name)
        met = None if value is None else compare[operator](value, target)
        verdicts.append((name, value, operator, target, met))
    return verdicts


def outcome_counts(conn) -> dict:
    rows = conn.execute("SELECT outcome, count(*) FROM calls_callrecord GROUP BY outcome")
    return dict(rows.fetchall())


def main() -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk (make bench does this)")
    print(f"Machine: {os.cpu_count()} cores, load average before the run: {_load()}")
    redis = RedisServer()
    redis.start()
    env = server_env(redis.url)
    port = free_port()
    server = None
    try:
        seed_database(
            env,
            *("--policies-vendor-key", POLICIES_KEY),
            *(() if POLICIES_CAPS else ("--policies-without-caps",)),
        )
        server = start_server(env, port)  # config/gunicorn.py, with the bench's sizes
        base = f"http://127.0.0.1:{port}/functions/v1"
        with tempfile.TemporaryDirectory() as directory:
            script = lua_script(Path(directory))
            noop_script = static_script(Path(directory) / "noop.lua", "{}")
            references = {}
            if POLICIES:
                # Right after the plain pings in each round, the two compared most closely.
                references["pings, every policy on"] = (
                    f"{base}/vendors-ping",
                    lua_script(Path(directory), POLICIES_KEY, "policies.lua"),
                )
            references["key validation"] = (
                f"{base}/vendors-ping",
                static_script(Path(directory) / "key.lua", KEY_VALIDATION_BODY),
            )
            references["round trips only"] = (f"{base}/bench-round-trips", script)
            if ORM:
                references["orm"] = (f"{base}/bench-orm-ping", script)
            # Warm up: every worker opens its connections and fills its caches.
            run_wrk(f"{base}/vendors-ping", 8, script, 3)
            if POLICIES:
                run_wrk(f"{base}/vendors-ping", 8, references["pings, every policy on"][1], 3)
            run_wrk(f"{base}/bench-noop", 8, noop_script, 2)
            if ORM:
                run_wrk(f"{base}/bench-orm-ping", 8, script, 2)
            # The plan each connection caches for the ping's statement was made in the warm-up,
            # for reservation and call-record tables still (nearly) empty: it scans them whole,
            # a little longer at every ping. In service, autovacuum's ANALYZE makes connections
            # plan again as the tables grow; it is off on some machines, so do it here, once.
            with psycopg.connect(DATABASE_URL, autocommit=True, connect_timeout=5) as conn:
                conn.execute("VACUUM ANALYZE")
            print(
                f"gunicorn {WORKER_CLASS}, {WORKERS} workers x {THREADS} threads, "
                f"{'pool' if POOL == 'true' else 'persistent connections'} {THREADS}/worker, "
                f"TTL {TTL_SECONDS} s, "
                f"{AGENTS_PER_STATE} agents in each of 56 states, {DURATION} s per endpoint and "
                f"connection count in {ROUNDS} alternating rounds (medians)"
            )
            print(
                f"{'conns':>5} {'trivial/s':>10} {'pings/s':>9} {'ratio':>6} "
                f"{'p50 ms':>7} {'p99 ms':>7} {'trivial p99':>11} {'non-2xx':>7}"
            )
            results = []
            first_references: dict[str, dict] = {}
            for connections in CONNECTIONS:
                # Alternating rounds, medians: other load on the machine comes and goes, and
                # should weigh on both endpoints alike.
                runs = {
                    "trivial": (f"{base}/bench-noop", noop_script),
                    "pings": (f"{base}/vendors-ping", script),
                }
                if REFERENCES and connections == CONNECTIONS[0]:
                    runs |= references
                rounds: dict[str, list[dict]] = {name: [] for name in runs}
                for _ in range(ROUNDS):
                    for name, (url, wrk_script) in runs.items():
                        rounds[name].append(
                            measured_wrk(
                                url, connections, wrk_script, DURATION // ROUNDS, server.pid
                            )
                        )
                trivial, pings = median_run(rounds["trivial"]), median_run(rounds["pings"])
                measured_references = {
                    name: median_run(rounds[name]) for name in references if name in rounds
                }
                ratio = pings["rate"] / trivial["rate"]
                results.append((connections, trivial, pings, ratio))
                if connections == CONNECTIONS[0]:
                    first_references = measured_references
                print(
                    f"{connections:>5} {trivial['rate']:>10.0f} {pings['rate']:>9.0f} "
                    f"{ratio:>6.2f} {pings['p50']:>7.2f} {pings['p99']:>7.2f} "
                    f"{trivial['p99']:>11.2f} {pings['non_2xx'] + trivial['non_2xx']:>7}"
                )
                for run in (trivial, pings):
                    if run["socket_errors"]:
                        print(f"      {run['socket_errors']}")
                for name, run in measured_references.items():
                    print(
                        f"      {name}: {run['rate']:.0f}/s, "
                        f"ratio {run['rate'] / trivial['rate']:.2f}, "
                        f"p50 {run['p50']:.2f}, p99 {run['p99']:.2f}, "
                        f"CPU web {run['web_ms']:.2f} database {run['database_ms']:.2f} ms"
                    )
                floor = measured_references.get("round trips only")
                policed = measured_references.get("pings, every policy on")
                if floor and policed:
                    plain_ratio = pings["rate"] / floor["rate"]
                    policed_ratio = policed["rate"] / floor["rate"]
                    print(
                        f"      pings to the round-trips floor: {plain_ratio:.2f} without "
                        f"policies, {policed_ratio:.2f} with every policy on "
                        f"({(policed_ratio / plain_ratio - 1) * 100:+.1f} %; target within 10 %)"
                    )
            steady_target = results[0][2]["rate"] * STEADY_FRACTION
            print(
                f"Steady rate (open loop): {steady_target:.0f} pings/s for {STEADY_SECONDS} s, "
                f"at most {STEADY_CONNECTIONS} connections, latency from each request's due time"
            )
            steady = steady_rate(port, steady_target, server.pid)
            generator, steady_pings = steady["generator"], steady["pings"]
            print(
                f"      generator alone (trivial endpoint): p50 {generator['p50_ms']:.2f}, "
                f"p99 {generator['p99_ms']:.2f} ms, sent late p99 "
                f"{generator['send_lag_p99_ms']:.2f} ms, its CPU "
                f"{generator['generator_cpu_ms_per_request']:.3f} ms per request "
                f"({generator['generator_core_share']:.0%} of a core)"
            )
            print(
                f"      pings: {steady_pings['answered_per_s']:.0f}/s answered, p50 "
                f"{steady_pings['p50_ms']:.2f}, p99 {steady_pings['p99_ms']:.2f}, max "
                f"{steady_pings['max_ms']:.2f} ms, non-2xx {steady_pings['non_2xx']}, errors "
                f"{steady_pings['errors']}, sent late p99 {steady_pings['send_lag_p99_ms']:.2f} "
                f"ms, generator {steady_pings['generator_core_share']:.0%} of a core"
            )
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        redis.stop()

    with tempfile.TemporaryDirectory() as directory:
        alone = statement_alone(env, Path(directory))
        write = pgbench_write(Path(directory))

    with psycopg.connect(DATABASE_URL, connect_timeout=5) as conn:
        counts = outcome_counts(conn)
        overlaps = _overlaps(env)
    print("CPU per request, ms (web: gunicorn's processes; database: the PostgreSQL backends):")
    for connections, trivial, pings, _ in results:
        print(
            f"{connections:>5} conns: trivial web {trivial['web_ms']:.2f}; "
            f"ping web {pings['web_ms']:.2f}, database {pings['database_ms']:.2f}"
        )
    if alone is None:
        print("PostgreSQL alone: pgbench not found, not measured")
    else:
        print(
            f"PostgreSQL alone (pgbench running the ping's statement, {STATEMENT_CLIENTS} "
            f"connections, {STATEMENT_SECONDS} s): {alone['rate']:.0f} statements/s, "
            f"{alone['cpu_ms']:.2f} ms of machine CPU per statement (pgbench's own included)"
        )
    if write is None:
        print("pgbench -N: pgbench not found, not measured")
    else:
        print(
            f"pgbench -N (simple write transaction, {STATEMENT_CLIENTS} connections, "
            f"{WRITE_SCRIPT_SECONDS} s): {write['rate']:.0f} transactions/s, "
            f"{write['database_ms']:.3f} ms of PostgreSQL backend CPU per transaction"
        )
    print(f"Load average after the run: {_load()} (other work on the machine counts in it)")
    print(f"Call records by outcome (the web runs' and pgbench's): {counts}")
    print(f"Overlapping reservations (same agent or number): {overlaps}")
    first_connections, trivial, pings, _ = results[0]
    floor = first_references.get("round trips only")
    orm = first_references.get("orm")
    policed = first_references.get("pings, every policy on")
    figures = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cores": os.cpu_count(),
        "load_average_after": os.getloadavg()[0],
        "connections": first_connections,
        "trivial_per_s": trivial["rate"],
        "ping_per_s": pings["rate"],
        "ping_p99_ms": pings["p99"],
        "floor_per_s": floor["rate"] if floor else None,
        "orm_per_s": orm["rate"] if orm else None,
        "orm_p99_ms": orm["p99"] if orm else None,
        "ping_web_cpu_ms": pings["web_ms"],
        "ping_db_cpu_ms": pings["database_ms"],
        "orm_db_cpu_ms": orm["database_ms"] if orm else None,
        "pgbench_write_per_s": write["rate"] if write else None,
        "pgbench_write_cpu_ms": write["database_ms"] if write else None,
        "statement_alone_per_s": alone["rate"] if alone else None,
        "steady_rate_per_s": steady_target,
        "steady_answered_per_s": steady_pings["answered_per_s"],
        "steady_p50_ms": steady_pings["p50_ms"],
        "steady_p99_ms": steady_pings["p99_ms"],
        "steady_non_2xx": steady_pings["non_2xx"] + steady_pings["errors"],
        "steady_generator_p99_ms": generator["p99_ms"],
        "steady_generator_core_share": steady_pings["generator_core_share"],
        "overlaps": overlaps,
        "policies_ping_per_s": policed["rate"] if policed else None,
        "policies_web_cpu_ms": policed["web_ms"] if policed else None,
        "policies_db_cpu_ms": policed["database_ms"] if policed else None,
    }
    figures["policies_vs_plain"] = policed["rate"] / pings["rate"] - 1 if policed else None
    figures["ping_per_floor"] = pings["rate"] / floor["rate"] if floor else None
    figures["ping_per_orm"] = pings["rate"] / orm["rate"] if orm else None
    figures["db_cpu_per_ping_per_pgbench_write"] = (
        pings["database_ms"] / write["database_ms"] if write and write["database_ms"] else None
    )
    print(f"Targets, {first_connections} connections, one run:")
    for name, value, operator, target, met in target_verdicts(figures):
        shown = "not measured" if value is None else f"{value:.2f}"
        verdict = {True: "met", False: "NOT met", None: "-"}[met]
        print(f"  {name:<36} {shown:>12}  target {operator} {target:<6} {verdict}")
    OUTPUT.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"Figures written to {OUTPUT}")
    if overlaps:
        raise SystemExit("Double bookings found")


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _overlaps(env: dict) -> int:
    return int(manage(env, "reservation_overlaps").strip())


if __name__ == "__main__":
    socket.setdefaulttimeout(30)
    main()
