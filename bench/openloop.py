"""An open-loop load generator for `make bench`: requests sent on a schedule, not when the last
one answered (wrk2's way; wrk2 is not packaged in Debian).

Request i is due at start + i / rate. A connection that is free takes the next due request; when
none is free a new connection opens (up to `connections`), and a request that has to wait for one
counts its wait: every latency is measured from the moment the request was due, so a server that
stalls is not let off by the generator slowing down with it (coordinated omission).

HTTP/1.1 keep-alive over plain asyncio streams, one process: at a few hundred requests a second
it uses a few percent of a core. It reports its own CPU per request and how late it sent, so a
run can show the generator was not the bottleneck.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass
class OpenLoopResult:
    rate: float  # the schedule's requests per second
    seconds: float
    sent: int = 0
    answered: int = 0
    non_2xx: int = 0
    errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    send_lags_ms: list[float] = field(default_factory=list)  # sent after it was due
    # (due, sent, answered) of each answered request, in time.monotonic() seconds
    timeline: list[tuple[float, float, float]] = field(default_factory=list)
    # (time, ms) of each moment the event loop woke over 2 ms late (kept with the timeline)
    loop_stalls: list[tuple[float, float]] = field(default_factory=list)
    cpu_seconds: float = 0.0  # the generator's own

    def percentile(self, values: list[float], fraction: float) -> float:
        if not values:
            return float("nan")
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]

    def summary(self) -> dict:
        return {
            "rate_per_s": self.rate,
            "answered_per_s": self.answered / self.seconds,
            "sent": self.sent,
            "answered": self.answered,
            "non_2xx": self.non_2xx,
            "errors": self.errors,
            "p50_ms": self.percentile(self.latencies_ms, 0.50),
            "p99_ms": self.percentile(self.latencies_ms, 0.99),
            "max_ms": max(self.latencies_ms, default=float("nan")),
            "send_lag_p99_ms": self.percentile(self.send_lags_ms, 0.99),
            "generator_cpu_ms_per_request": self.cpu_seconds * 1000 / max(self.sent, 1),
            "generator_core_share": self.cpu_seconds / self.seconds,
        }


def _request_bytes(host: str, path: str, body: str) -> bytes:
    encoded = body.encode()
    return (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(encoded)}\r\nConnection: keep-alive\r\n\r\n"
    ).encode() + encoded


async def _read_response(reader: asyncio.StreamReader) -> int:
    """The status of one response, its body read (Content-Length framing, as gunicorn sends)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return status


async def _run(
    host: str,
    port: int,
    path: str,
    bodies: Sequence[str],
    rate: float,
    seconds: float,
    connections: int,
    timeout: float,
    keep_timeline: bool = False,
) -> OpenLoopResult:
    result = OpenLoopResult(rate=rate, seconds=seconds)
    requests = [_request_bytes(f"{host}:{port}", path, body) for body in bodies]
    total = int(rate * seconds)
    queue: asyncio.Queue[tuple[int, float]] = asyncio.Queue()
    idle = 0  # connections waiting for a request
    opened = 0
    loop = asyncio.get_running_loop()

    async def connection_loop() -> None:
        nonlocal idle
        reader = writer = None
        try:
            while True:
                idle += 1
                index, due = await queue.get()
                idle -= 1
                if index < 0:
                    return
                started = loop.time()
                result.send_lags_ms.append((started - due) * 1000)
                try:
                    if writer is None:
                        reader, writer = await asyncio.open_connection(host, port)
                    assert reader is not None
                    writer.write(requests[index % len(requests)])
                    status = await asyncio.wait_for(_read_response(reader), timeout)
                except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError):
                    result.errors += 1
                    if writer is not None:
                        writer.close()
                    reader = writer = None
                    continue
                answered = loop.time()
                result.latencies_ms.append((answered - due) * 1000)
                result.timeline.append((due, started, answered))
                result.answered += 1
                if not 200 <= status < 300:
                    result.non_2xx += 1
        finally:
            if writer is not None:
                writer.close()

    async def watch_loop() -> None:
        while True:
            due = loop.time() + 0.001
            await asyncio.sleep(0.001)
            late = loop.time() - due
            if late > 0.002:
                result.loop_stalls.append((due, late * 1000))

    watcher = asyncio.create_task(watch_loop()) if keep_timeline else None
    workers: list[asyncio.Task] = []
    cpu_before = time.process_time()
    start = loop.time() + 0.05
    for index in range(total):
        due = start + index / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        if idle == 0 and opened < connections:
            opened += 1
            workers.append(asyncio.create_task(connection_loop()))
        queue.put_nowait((index, due))
        result.sent += 1
    for _ in workers:
        queue.put_nowait((-1, 0.0))
    await asyncio.gather(*workers)
    if watcher is not None:
        watcher.cancel()
    result.cpu_seconds = time.process_time() - cpu_before
    return result


def open_loop(
    *,
    host: str,
    port: int,
    path: str,
    bodies: Sequence[str],
    rate: float,
    seconds: float,
    connections: int = 64,
    timeout: float = 5.0,
    latencies: bool = False,
    timeline: bool = False,
) -> dict:
    """POST `bodies` in turn to `path` at `rate` a second for `seconds`; the figures (and every
    latency, with `latencies`; with `timeline`, each answered request's due, sent and answered
    times in time.monotonic() seconds, and each moment the generator's own event loop woke over
    2 ms late, so a pause of the generator cannot pass for the server's)."""
    # No garbage collection while it runs: the generator's own full collections, which grow
    # with what it keeps, paused it for up to 16 ms (seen with `make bench-steady`).
    collecting = gc.isenabled()
    gc.disable()
    try:
        result = asyncio.run(
            _run(host, port, path, bodies, rate, seconds, connections, timeout, timeline)
        )
    finally:
        if collecting:
            gc.enable()
    summary = result.summary()
    if latencies:
        summary["latencies_ms"] = result.latencies_ms
    if timeline:
        summary["timeline"] = result.timeline
        summary["loop_stalls"] = result.loop_stalls
    return summary


def median_summary(runs: list[dict]) -> dict:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}
