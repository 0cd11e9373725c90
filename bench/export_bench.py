"""Benchmark of the call-record exports on PostgreSQL: `make bench-export`.

Seeds a dedicated database (BENCH_DATABASE_URL, default `callrouting_bench` on the local server)
with BENCH_ROWS call records (default 1,000,000; a month of pings with tracking data) in one SQL
statement, then runs each export in a fresh subprocess and prints its rows per second and its
peak memory (the process's maximum resident set size, Django included, and its growth over the
process before the export). A tenth of the month is exported too, so you can see that memory
does not grow with the row count.

- CSV: the streaming export the admin and the API serve (`call_export_stream`), read to the end.
- XLSX: the background job's service (`call_export_run`, what the Celery task calls), writing the
  workbook in constant memory.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/callrouting_bench"
PERIOD_START = "2025-09-01T00:00:00+00:00"
# A tenth of the rows: the first three days of the month at the seeding's pace.
TENTH_UNTIL = {"since": "2025-09-01", "until": "2025-09-03T21:20:00+00:00"}

SEED_SQL = """
INSERT INTO calls_callrecord (
    request_id, vendor_id, phone_number, state, state_source, tracking, outcome,
    rejected_reason, transfer_target, agent_id, agent_count, ttl_seconds, received_at,
    connected_at, ended_at, duration_seconds, caller_id, caller_id_matches, call_status
)
SELECT
    md5('bench-' || i)::uuid,
    (%(vendors)s)[1 + i %% cardinality(%(vendors)s)],
    '+1480' || lpad((i %% 10000000)::text, 7, '0'),
    (ARRAY['AZ', 'CA', 'TX', 'FL', 'NY'])[1 + i %% 5],
    CASE WHEN i %% 3 = 0 THEN 'state_code' ELSE 'area_code' END,
    jsonb_build_object(
        'lead_id', 'L-' || i,
        'ad_id', 'AD-' || (i %% 500),
        'source', (ARRAY['google', 'facebook', 'bing', 'tiktok'])[1 + i %% 4],
        'ad_url', 'https://example.com/offer?id=' || (i %% 500)
    ) || CASE WHEN i %% 10 = 0
              THEN jsonb_build_object('utm_campaign', 'fall-' || (i %% 7), 'score', i %% 100)
              ELSE '{}'::jsonb END,
    outcome,
    CASE WHEN outcome = 'rejected' THEN 'Vendor is not authorized for state TX.' ELSE '' END,
    CASE WHEN outcome IN ('no_agent', 'rejected') THEN '' ELSE '+1877570' || (3926 + i %% 20) END,
    CASE WHEN outcome IN ('no_agent', 'rejected') THEN NULL
         ELSE (%(agents)s)[1 + i %% cardinality(%(agents)s)] END,
    CASE WHEN outcome IN ('no_agent', 'rejected') THEN NULL ELSE 1 + i %% 3 END,
    CASE WHEN outcome IN ('no_agent', 'rejected') THEN NULL ELSE 60 END,
    %(start)s::timestamptz + i * interval '2.5 seconds',
    CASE WHEN outcome IN ('connected', 'completed')
         THEN %(start)s::timestamptz + i * interval '2.5 seconds' + interval '20 seconds' END,
    CASE WHEN outcome = 'completed'
         THEN %(start)s::timestamptz + i * interval '2.5 seconds' + interval '200 seconds' END,
    CASE WHEN outcome = 'completed' THEN 180 END,
    '', NULL, ''
FROM (
    SELECT i, (ARRAY['completed', 'completed', 'expired', 'no_agent', 'repeat', 'rejected',
                     'connected', 'reserved', 'completed', 'expired'])[1 + i %% 10] AS outcome
    FROM generate_series(1, %(rows)s) AS i
) AS seed
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measure", choices=["csv", "xlsx"], help=argparse.SUPPRESS)
    parser.add_argument("--tenth", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    rows = int(os.environ.get("BENCH_ROWS", "1000000"))
    env = _django_env(url)
    if args.measure:
        os.environ.update(env)
        print(json.dumps(_measure(args.measure, tenth=args.tenth)))
        return

    print(f"Benchmark database: {_without_password(url)}; {rows:,} call records")
    print(f"Machine: {os.cpu_count()} cores, load average {_load()} at start")
    _create_database(url)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env={**os.environ, **env},
        check=True,
    )
    os.environ.update(env)
    _seed(rows)

    print(
        f"{'export':<22}{'rows':>11}{'seconds':>10}{'rows/s':>10}{'peak MB':>10}{'growth MB':>11}"
    )
    for export_format in ("csv", "xlsx"):
        for tenth in (True, False):
            result = _run_child(export_format, tenth, env)
            label = f"{export_format.upper()} {'a tenth' if tenth else 'everything'}"
            print(
                f"{label:<22}{result['rows']:>11,}{result['seconds']:>10.1f}"
                f"{result['rows'] / result['seconds']:>10,.0f}{result['peak_mb']:>10.1f}"
                f"{result['peak_mb'] - result['baseline_mb']:>11.1f}"
            )
    print(f"Load average at the end: {_load()}")


def _django_env(url: str) -> dict[str, str]:
    return {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": url,
        "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-only-not-a-secret"),
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
    }


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{parts.username}@{host}" if parts.username else host
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def _create_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [name]
        ).fetchone()
        if not exists:
            connection.execute(f'CREATE DATABASE "{name}"')


def _setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def _seed(rows: int) -> None:
    _setup_django()
    from django.db import connection, transaction

    from calls.models import CallExport, CallRecord
    from routing.models import Agent
    from vendors.models import Vendor

    if CallRecord.objects.count() == rows:
        print(f"Seed: {rows:,} call records already there")
        return
    started = time.monotonic()
    with transaction.atomic():
        CallExport.objects.all().delete()
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE calls_callrecord CASCADE")
        vendors = [
            Vendor.objects.get_or_create(
                name=f"Bench Vendor {index}", defaults={"all_states": True}
            )[0].pk
            for index in range(1, 6)
        ]
        agents = [
            Agent.objects.get_or_create(
                name=f"Bench Agent {index}",
                defaults={"destination": f"sip:bench-{index}@x.invalid"},
            )[0].pk
            for index in range(1, 21)
        ]
        with connection.cursor() as cursor:
            cursor.execute(
                SEED_SQL,
                {"vendors": vendors, "agents": agents, "start": PERIOD_START, "rows": rows},
            )
            cursor.execute("ANALYZE calls_callrecord")
    print(f"Seed: {rows:,} call records in {time.monotonic() - started:.1f} s")


def _run_child(export_format: str, tenth: bool, env: dict[str, str]) -> dict:
    command = [sys.executable, __file__, "--measure", export_format] + (
        ["--tenth"] if tenth else []
    )
    done = subprocess.run(
        command, cwd=ROOT, env={**os.environ, **env}, check=True, capture_output=True, text=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def _measure(export_format: str, *, tenth: bool) -> dict:
    _setup_django()
    from django.conf import settings

    from calls.exports.forms import CallRecordFilters, call_record_filters_parse
    from calls.exports.jobs import call_export_run, call_export_start, call_export_stream
    from calls.models import CallExport

    filters = call_record_filters_parse(data=TENTH_UNTIL) if tenth else CallRecordFilters()
    baseline = _max_rss_mb()
    started = time.monotonic()
    if export_format == "csv":
        stream = call_export_stream(
            user=None, filters=filters, export_format="csv", source="bench", bom=True
        )
        size = sum(len(chunk) for chunk in stream.chunks)
        stream.export.refresh_from_db()
        rows = stream.export.rows_written
    else:
        with tempfile.TemporaryDirectory() as media:
            settings.MEDIA_ROOT = media
            pending = call_export_start(user=None, filters=filters, source="bench", defer=False)
            export = call_export_run(export_id=pending.pk)
            if export is None or export.status != CallExport.Status.DONE:
                raise SystemExit(f"XLSX export failed: {export and export.error}")
            rows = export.rows_written
            size = Path(export.file.path).stat().st_size
    seconds = time.monotonic() - started
    return {
        "rows": rows,
        "seconds": seconds,
        "bytes": size,
        "baseline_mb": baseline,
        "peak_mb": _max_rss_mb(),
    }


if __name__ == "__main__":
    main()
