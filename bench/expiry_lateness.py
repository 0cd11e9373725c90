"""How late a reservation is recorded expired, with and without a Celery task per reservation.

Runs a real worker and one beat (the sweep every RESERVATION_SWEEP_SECONDS) on a redis-server of
its own and the PostgreSQL database BENCH_EXPIRY_DATABASE_URL (migrated and seeded here), makes
pings through Django's test client at random moments, and watches each reservation until it is
expired: lateness is that moment minus its expires_at. Prints, for RESERVATION_EXPIRY_TASKS
true and false, the median, 95th percentile and largest lateness, and the median time of a ping.

    BENCH_EXPIRY_DATABASE_URL=postgres://postgres@127.0.0.1:5432/callrouting_bench_expiry \\
        .venv/bin/python bench/expiry_lateness.py
"""

import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.servers import RedisServer  # noqa: E402

DATABASE_URL = os.environ.get(
    "BENCH_EXPIRY_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/callrouting_bench_expiry"
)
PINGS = int(os.environ.get("BENCH_EXPIRY_PINGS", "60"))
TTL_SECONDS = 2
DEMO_KEY = "6ab36a94-5dfb-4336-a559-63da6a5a26d2"


def stack_env(redis_url: str) -> dict:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "true",
        "DATABASE_URL": DATABASE_URL,
        "CELERY_BROKER_URL": f"{redis_url}/0",
        "CACHE_URL": f"{redis_url}/1",
        "RESERVATION_TTL_SECONDS": str(TTL_SECONDS),
        "LOG_LEVEL": "WARNING",
    }


def start_celery(env: dict, schedule: Path) -> list[subprocess.Popen]:
    celery = [sys.executable, "-m", "celery", "-A", "config"]
    return [
        subprocess.Popen(
            [*celery, "worker", "--concurrency", "2", "--loglevel", "WARNING"], cwd=REPO, env=env
        ),
        subprocess.Popen(
            [*celery, "beat", "--loglevel", "WARNING", "--schedule", str(schedule)],
            cwd=REPO,
            env=env,
        ),
    ]


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        process.wait(timeout=30)


def measure(expiry_tasks: bool) -> dict:
    from django.conf import settings
    from django.test import Client
    from django.utils import timezone

    from calls.heartbeat import worker_heartbeat_age
    from routing.models import Reservation

    settings.RESERVATION_EXPIRY_TASKS = expiry_tasks
    # The worker is up once it has run beat's sweep (the heartbeat /readyz reads).
    started = timezone.now()
    while (age := worker_heartbeat_age()) is None or timezone.now() - age < started:
        time.sleep(0.2)

    client = Client(SERVER_NAME="127.0.0.1")
    pending: dict[int, object] = {}
    lateness: list[float] = []
    ping_seconds: list[float] = []
    done = threading.Event()

    def watch():
        from django.db import connection

        while not done.is_set() or pending:
            expired = Reservation.objects.filter(
                pk__in=list(pending), status=Reservation.Status.EXPIRED
            )
            now = timezone.now()
            for pk in expired.values_list("pk", flat=True):
                lateness.append((now - pending.pop(pk)).total_seconds())
            time.sleep(0.01)
        connection.close()

    watcher = threading.Thread(target=watch)
    watcher.start()
    for i in range(PINGS):
        time.sleep(random.uniform(0.2, 0.6))
        state, area = random.choice([("AZ", "480"), ("CA", "415")])
        body = {"vendorKey": DEMO_KEY, "phoneNumber": f"+1{area}55{i:05d}", "stateCode": state}
        began = time.perf_counter()
        answer = client.post("/functions/v1/vendors-ping", body, content_type="application/json")
        ping_seconds.append(time.perf_counter() - began)
        data = answer.json()["data"]
        if data.get("agentAvailable"):
            reservation = Reservation.objects.get(call_records__request_id=data["requestId"])
            pending[reservation.pk] = reservation.expires_at
    done.set()
    watcher.join(timeout=TTL_SECONDS + 30)
    lateness.sort()
    return {
        "reservations": len(lateness),
        "median": statistics.median(lateness),
        "p95": lateness[int(0.95 * (len(lateness) - 1))],
        "max": lateness[-1],
        "ping_ms": statistics.median(ping_seconds) * 1000,
    }


def main() -> None:
    redis = RedisServer()
    redis.start()
    env = stack_env(redis.url)
    try:
        for command in (["migrate", "--noinput"], ["seed_demo"]):
            subprocess.run([sys.executable, "manage.py", *command], cwd=REPO, env=env, check=True)
        os.environ.update(env)
        import django

        django.setup()
        results = {}
        for expiry_tasks in (True, False):
            schedule = Path(f"/tmp/bench-expiry-beat-{os.getpid()}-{expiry_tasks}")
            processes = start_celery(env, schedule)
            try:
                results[expiry_tasks] = measure(expiry_tasks)
            finally:
                stop(processes)
                schedule.unlink(missing_ok=True)
        print("RESERVATION_EXPIRY_TASKS  reservations  late: median    p95    max  ping median")
        for expiry_tasks, r in results.items():
            print(
                f"{str(expiry_tasks).lower():<25} {r['reservations']:>12} "
                f"{r['median']:>13.3f} {r['p95']:>6.3f} {r['max']:>6.3f} {r['ping_ms']:>9.1f} ms"
            )
    finally:
        redis.stop()


if __name__ == "__main__":
    main()
