"""`make bench-python`: the Python a ping costs, counted in instructions, next to a trivial request.

Timings on a shared machine move by tens of percent from run to run; instruction counts do not.
This runs requests through Django's WSGI handler in one process (no HTTP server, no load
generator), under `valgrind --tool=callgrind`, once with no measured requests and once with
BENCH_PYTHON_REQUESTS of them, and prints the difference per request, for pings and for the
trivial endpoint. PostgreSQL's and Redis's own work is not counted (see `make bench` for those).

It uses the database `make bench` seeded (BENCH_PING_DATABASE_URL) and a redis-server of its own.
"""

import io
import json
import os
import random
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.run import ALL_STATES_KEY, DATABASE_URL, server_env  # noqa: E402
from tests.servers import RedisServer  # noqa: E402

REQUESTS = int(os.environ.get("BENCH_PYTHON_REQUESTS", "300"))
WARM_UP = 100
ENDPOINTS = {"trivial": "/functions/v1/bench-noop", "ping": "/functions/v1/vendors-ping"}


def run_requests(endpoint: str, count: int) -> None:
    """WARM_UP requests, then `count` more: what callgrind counts, minus a run with none."""
    import django

    django.setup()
    from django.core.handlers.wsgi import WSGIHandler

    from routing.geography import AREA_CODE_STATES

    handler = WSGIHandler()
    area_codes = sorted(AREA_CODE_STATES)
    rng = random.Random(1)
    statuses: list[str] = []

    def start_response(status: str, headers: list, exc_info: object = None) -> Callable:
        statuses.append(status)
        return lambda data: None  # WSGI's write(), which Django never calls

    for number in range(WARM_UP + count):
        phone = f"+1{rng.choice(area_codes)}{rng.randint(0, 9999999):07d}"
        body = json.dumps({"vendorKey": ALL_STATES_KEY, "phoneNumber": phone, "n": number}).encode()
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": endpoint,
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "80",
            "HTTP_HOST": "127.0.0.1",
            "REMOTE_ADDR": "127.0.0.1",
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.input": io.BytesIO(body),
            "wsgi.url_scheme": "http",
        }
        response = handler(environ, start_response)
        b"".join(response)
        response.close()
        if not statuses[-1].startswith("200"):
            raise SystemExit(f"{endpoint} answered {statuses[-1]}")


def instructions(env: dict, endpoint: str, count: int, directory: Path) -> int:
    output = directory / f"callgrind.{count}.out"
    result = subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={output}",
         sys.executable, __file__, "--inner", endpoint, str(count)],
        cwd=REPO, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    collected = re.search(r"Collected : (\d+)", result.stderr)
    if collected is None:
        raise SystemExit(f"No instruction count from callgrind:\n{result.stderr}")
    return int(collected[1])


def main() -> None:
    import shutil
    import tempfile

    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed: apt-get install -y valgrind")
    redis = RedisServer()
    redis.start()
    metrics = tempfile.TemporaryDirectory()
    try:
        env = {**server_env(redis.url), "PROMETHEUS_MULTIPROC_DIR": metrics.name}
        print(f"Python instructions per request, {REQUESTS} requests after {WARM_UP} to warm up,")
        print(f"in one process on {DATABASE_URL.rsplit('/', 1)[1]} (seeded by make bench):")
        for name, endpoint in ENDPOINTS.items():
            with tempfile.TemporaryDirectory() as directory:
                none = instructions(env, endpoint, 0, Path(directory))
                some = instructions(env, endpoint, REQUESTS, Path(directory))
            print(f"  {name:8} {(some - none) / REQUESTS / 1e6:.2f} million")
    finally:
        redis.stop()
        metrics.cleanup()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--inner"]:
        run_requests(sys.argv[2], int(sys.argv[3]))
    else:
        main()
