"""`make bench-steady`: where the steady-rate phase's slow pings come from.

Sets up as `make bench` does (its database, seeding, server sizes and BENCH_* settings), with the
server's workers probed (bench/gunicorn_probe.py: each request's time inside its worker, each
garbage collection). Fills the tables with BENCH_FILL_SECONDS (20) of pings from wrk at 16
connections, whose rate is the saturated rate, then sends pings on a schedule at
BENCH_STEADY_FRACTION (0.5) of it, BENCH_STEADY_ROUNDS (6) times BENCH_STEADY_SECONDS (15),
while a sampler notes every 50 ms what each process on the machine spent of the CPU, what the
bench database's backends were waiting for (autovacuum included) and which backends are new.

For each round: the p50 and p99 from each ping's due time; the slow pings (over BENCH_SLOW_MS,
15) split into sent late by the generator, waiting for a worker's thread, and inside the worker;
the workers' full collections; when new backends connected; and the worst bursts of slow pings
with what happened around them. The generator's own event loop is watched too (and it runs
without garbage collection), so a pause of its own would show.
"""

import collections
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import psycopg  # noqa: E402

from bench import run  # noqa: E402
from bench.openloop import open_loop  # noqa: E402
from tests.servers import RedisServer, free_port  # noqa: E402

FILL_SECONDS = int(os.environ.get("BENCH_FILL_SECONDS", "20"))
ROUNDS = int(os.environ.get("BENCH_STEADY_ROUNDS", "6"))
SLOW_MS = float(os.environ.get("BENCH_SLOW_MS", "15"))
SAMPLE_SECONDS = 0.05
TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")
BENCH_BACKENDS = "postgres: the bench's backends"


@dataclass
class Sample:
    at: float  # time.monotonic()
    cpu_ticks: dict[str, int]  # by process name, since the last sample
    waits: list[str]  # the bench database's busy backends: their wait event, or "on CPU"
    new_backends: int


@dataclass
class Collection:
    generation: int
    start: float
    end: float

    @property
    def ms(self) -> float:
        return (self.end - self.start) * 1000


class MachineSampler:
    """Every SAMPLE_SECONDS, in a thread: each process's CPU (by what it is), the bench
    database's busy backends by wait event, and the backends new since the last sample."""

    def __init__(self, database: str, server_pid: int) -> None:
        self.database = database
        self.server_pid = server_pid
        self.samples: list[Sample] = []
        self._names: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _name(self, pid: int, command: str, parent: int) -> str:
        if pid not in self._names:
            name = command
            if pid == os.getpid():
                name = "load generator"
            elif parent == self.server_pid or pid == self.server_pid:
                name = "gunicorn"
            elif command == "postgres":
                try:
                    title = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
                except OSError:
                    title = ""
                if f" {self.database} " in title:
                    name = BENCH_BACKENDS
                elif title.startswith("postgres: "):  # the WAL writer, the checkpointer...
                    name = "postgres: " + title.split("\0")[0].split(": ")[-1].strip()[:24]
                else:
                    name = "postgres: postmaster"
            self._names[pid] = name
        return self._names[pid]

    def _ticks(self) -> dict[int, tuple[str, int]]:
        ticks = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                text = stat.read_text()
            except OSError:
                continue
            pid = int(stat.parent.name)
            fields = text.rsplit(")", 1)[1].split()
            name = self._name(pid, text[text.index("(") + 1 : text.rindex(")")], int(fields[1]))
            ticks[pid] = (name, int(fields[11]) + int(fields[12]))
        return ticks

    def _sample(self) -> None:
        with psycopg.connect(run.DATABASE_URL, autocommit=True) as conn:
            before = self._ticks()
            while not self._stop.wait(SAMPLE_SECONDS):
                after = self._ticks()
                spent: collections.Counter[str] = collections.Counter()
                new_backends = 0
                for pid, (name, ticks) in after.items():
                    # A process new since the last sample: all its CPU is this sample's.
                    spent[name] += ticks - before.get(pid, (name, 0))[1]
                    new_backends += pid not in before and name == BENCH_BACKENDS
                before = after
                waits = conn.execute(
                    "SELECT CASE WHEN backend_type = 'autovacuum worker' THEN 'autovacuum'"
                    " ELSE coalesce(wait_event_type || ': ' || wait_event, 'on CPU') END"
                    " FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()"
                    " AND (state = 'active' OR backend_type = 'autovacuum worker')",
                    [self.database],
                ).fetchall()
                self.samples.append(
                    Sample(
                        at=time.monotonic(),
                        cpu_ticks={name: ticks for name, ticks in spent.items() if ticks},
                        waits=[row[0] for row in waits],
                        new_backends=new_backends,
                    )
                )

    def between(self, start: float, end: float) -> list[Sample]:
        return [sample for sample in self.samples if start <= sample.at <= end]

    def __enter__(self) -> "MachineSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Probes:
    """What bench/gunicorn_probe.py wrote: the pings' (start, end) inside the workers and the
    workers' collections."""

    requests: list[tuple[float, float]] = field(default_factory=list)
    collections: list[Collection] = field(default_factory=list)

    @classmethod
    def read(cls, directory: Path) -> "Probes":
        probes = cls()
        for path in directory.glob("worker-*.txt"):
            for line in path.read_text().splitlines():
                kind, what, start, end = line.split()
                if kind == "req" and what == "/functions/v1/vendors-ping":
                    probes.requests.append((float(start), float(end)))
                elif kind == "gc":
                    probes.collections.append(Collection(int(what), float(start), float(end)))
        probes.requests.sort()
        return probes


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


def bursts(slow: list[tuple[float, float, float]], gap: float = 0.1) -> list[list[tuple]]:
    """Slow pings grouped: each due within `gap` seconds of the group's last answer."""
    groups: list[list[tuple]] = []
    for ping in sorted(slow):
        if groups and ping[0] <= max(answered for _, _, answered in groups[-1]) + gap:
            groups[-1].append(ping)
        else:
            groups.append([ping])
    return groups


def shares(samples: list[Sample], top: int) -> str:
    """The processes that spent most CPU over the samples, as shares of one core."""
    spent: collections.Counter[str] = collections.Counter()
    for sample in samples:
        spent.update(sample.cpu_ticks)
    seconds = max(len(samples) * SAMPLE_SECONDS, 1e-9)
    return ", ".join(
        f"{name} {ticks / TICKS_PER_SECOND / seconds:.0%}" for name, ticks in spent.most_common(top)
    )


def report_round(number: int, result: dict, started: float, ended: float, probes: Probes,
                 sampler: MachineSampler) -> None:  # fmt: skip
    timeline = result["timeline"]
    slow = [ping for ping in timeline if (ping[2] - ping[0]) * 1000 > SLOW_MS]
    print(
        f"  round {number}: p50 {result['p50_ms']:.2f}, p99 {result['p99_ms']:.2f}, max "
        f"{result['max_ms']:.2f} ms; {len(slow)} of {len(timeline)} pings over {SLOW_MS:.0f} ms"
    )
    parts = []
    for due, sent, answered in slow:
        # The worker's request that answered it: the last to end before the answer arrived,
        # among those that started after it was sent.
        inside = [(s, e) for s, e in probes.requests if sent <= s and e <= answered + 0.0005]
        if inside:
            start, end = max(inside, key=lambda pair: pair[1])
            parts.append(((sent - due) * 1000, (start - sent) * 1000, (end - start) * 1000))
    if parts:
        late, waiting, working = (statistics.median(part[i] for part in parts) for i in range(3))
        print(
            f"    slow pings, medians: sent late {late:.1f}, waiting for a worker's thread "
            f"{waiting:.1f}, inside the worker {working:.1f} ms"
        )
    full = [c for c in probes.collections if c.generation == 2 and started <= c.start <= ended]
    longest = max((c.ms for c in full), default=0.0)
    print(f"    the workers' full collections: {len(full)}, the longest {longest:.1f} ms")
    samples = sampler.between(started, ended)
    connected = [f"{s.at - started:.1f}" for s in samples for _ in range(s.new_backends)]
    print(f"    new database connections at (s): {', '.join(connected) or 'none'}")
    stalls = [ms for _, ms in result["loop_stalls"]]
    print(
        f"    the generator's event loop late over 2 ms {len(stalls)} times, at worst "
        f"{max(stalls, default=0):.1f} ms"
    )
    for group in sorted(bursts(slow), key=lambda g: -max(a - d for d, _, a in g))[:3]:
        begin, end = min(p[0] for p in group), max(p[2] for p in group)
        # A backend is seen up to a sample after it forked: look one sample further back.
        around = sampler.between(begin - 2 * SAMPLE_SECONDS, end + SAMPLE_SECONDS)
        waits = collections.Counter(wait for sample in around for wait in sample.waits)
        in_workers = [
            f"gen{c.generation} {c.ms:.1f} ms"
            for c in probes.collections
            if c.generation and begin <= c.start <= end
        ]
        print(
            f"    burst at {begin - started:.2f} s for {(end - begin) * 1000:.0f} ms: "
            f"{len(group)} slow, worst {max(a - d for d, _, a in group) * 1000:.0f} ms; "
            f"new connections {sum(s.new_backends for s in around)}; worker collections "
            f"{in_workers or 'none'}\n      CPU: {shares(around, 5)}\n"
            f"      backends: {dict(waits.most_common(4))}"
        )
    print(f"    CPU over the round: {shares(samples, 5)}")


def main() -> None:
    # Stopped (by `timeout`, say): still stop the server and Redis on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    redis = RedisServer()
    redis.start()
    env = run.server_env(redis.url)
    port = free_port()
    probe_dir = Path(tempfile.mkdtemp(prefix="bench-probes-"))
    server = None
    rounds = []
    try:
        run.seed_database(env)
        server = run.start_server(
            env, port, config="bench/gunicorn_probe.py", BENCH_PROBE_DIR=str(probe_dir)
        )
        url = f"http://127.0.0.1:{port}/functions/v1/vendors-ping"
        with tempfile.TemporaryDirectory() as directory:
            script = run.lua_script(Path(directory))
            run.run_wrk(url, 8, script, 3)
            with psycopg.connect(run.DATABASE_URL, autocommit=True) as conn:
                conn.execute("VACUUM ANALYZE")
            saturated = run.run_wrk(url, 16, script, FILL_SECONDS)["rate"]
        rate = saturated * run.STEADY_FRACTION
        print(
            f"{run.WORKERS} workers x {run.THREADS} threads; {saturated:.0f} pings/s saturated "
            f"(16 connections); on a schedule at {rate:.0f}/s, {ROUNDS} rounds of "
            f"{run.STEADY_SECONDS} s, at most {run.STEADY_CONNECTIONS} connections"
        )
        bodies = run.ping_bodies()

        def pings(seconds: int, timeline: bool) -> dict:
            return open_loop(host="127.0.0.1", port=port, path="/functions/v1/vendors-ping",
                             bodies=bodies, rate=rate, seconds=seconds,
                             connections=run.STEADY_CONNECTIONS, timeline=timeline)  # fmt: skip

        pings(3, timeline=False)  # the generator opens its connections as it needs them: here
        database = urlsplit(run.DATABASE_URL).path.lstrip("/")
        with MachineSampler(database, server.pid) as sampler:
            for _ in range(ROUNDS):
                run.settle(server.pid)
                started = time.monotonic()
                result = pings(run.STEADY_SECONDS, timeline=True)
                rounds.append((started, time.monotonic(), result))
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)  # the workers write their probes as they exit
            server.wait(timeout=30)
        redis.stop()
    probes = Probes.read(probe_dir)
    for path in probe_dir.iterdir():
        path.unlink()
    probe_dir.rmdir()
    for number, (started, ended, result) in enumerate(rounds, 1):
        report_round(number, result, started, ended, probes, sampler)
    p99s = [result["p99_ms"] for _, _, result in rounds]
    print(
        f"p99 of the rounds: {', '.join(f'{p:.1f}' for p in p99s)} ms; over 15 ms in "
        f"{sum(p > 15 for p in p99s)} of {len(p99s)}"
    )


if __name__ == "__main__":
    main()
