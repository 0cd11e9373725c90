"""How long the call record admin takes on a large table. Prints figures; asserts nothing.

    DATABASE_URL=postgres://…/somedb python manage.py migrate
    DATABASE_URL=postgres://…/somedb python bench/call_record_admin.py --rows 1000000

Fills the table to --rows with generated records (PostgreSQL: one INSERT … generate_series;
SQLite: batches), then times each admin page a few times through Django's test client, which
runs the whole view, template included, without a network. `--drop` deletes the generated rows.
"""

import argparse
import os
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings_test")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from calls.models import CallRecord  # noqa: E402
from vendors.models import Vendor  # noqa: E402

VENDOR_PREFIX = "Bench Vendor "
STATES = ["AZ", "CA", "TX", "NY", "FL"]
OUTCOMES = [
    CallRecord.Outcome.RESERVED,
    CallRecord.Outcome.NO_AGENT,
    CallRecord.Outcome.REPEAT,
    CallRecord.Outcome.COMPLETED,
]


def bench_vendors() -> list[Vendor]:
    return [
        Vendor.objects.get_or_create(name=f"{VENDOR_PREFIX}{n}", defaults={"all_states": True})[0]
        for n in range(1, 6)
    ]


def fill(rows: int) -> None:
    vendors = bench_vendors()
    have = CallRecord.objects.filter(vendor__in=vendors).count()
    missing = rows - have
    if missing <= 0:
        print(f"table already holds {have:,} generated rows")
        return
    started = time.perf_counter()
    ids = [v.pk for v in vendors]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                """
                INSERT INTO calls_callrecord (request_id, vendor_id, phone_number, state,
                    state_source, tracking, outcome, rejected_reason, transfer_target,
                    received_at, caller_id, call_status)
                SELECT gen_random_uuid(), (%s::bigint[])[1 + i %% 5],
                    '+1480' || lpad((i %% 10000000)::text, 7, '0'), (%s::text[])[1 + i / 7 %% 5],
                    'area_code', jsonb_build_object('lead_id', 'L-' || i, 'source', 'bench'),
                    (%s::text[])[1 + i / 3 %% 4], '', '', now() - make_interval(secs => i), '', ''
                FROM generate_series(%s, %s) AS i
                """,
                [ids, STATES, OUTCOMES, have + 1, rows],
            )
            cursor.execute("ANALYZE calls_callrecord")
    else:
        now = timezone.now()
        for start in range(have + 1, rows + 1, 10_000):
            with transaction.atomic():
                CallRecord.objects.bulk_create(
                    CallRecord(
                        vendor_id=ids[i % 5],
                        phone_number=f"+1480{i % 10_000_000:07d}",
                        state=STATES[i // 7 % 5],
                        state_source="area_code",
                        tracking={"lead_id": f"L-{i}", "source": "bench"},
                        outcome=OUTCOMES[i // 3 % 4],
                        received_at=now - timedelta(seconds=i),
                    )
                    for i in range(start, min(start + 10_000, rows + 1))
                )
    print(f"inserted {missing:,} rows in {time.perf_counter() - started:.1f} s")


def measure(rows: int, repeats: int) -> None:
    settings.ALLOWED_HOSTS = ["testserver"]
    user, _ = User.objects.get_or_create(
        username="bench-admin", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(user)
    vendor = Vendor.objects.get(name=f"{VENDOR_PREFIX}3")
    sample = CallRecord.objects.filter(vendor=vendor).order_by("pk")[500]
    lead_id = sample.tracking["lead_id"]
    today = timezone.now().date().isoformat()
    base = f"/{settings.ADMIN_URL}calls/callrecord/"
    pages = {
        "first page": "",
        "page 50": "?p=50",
        "vendor filter": f"?vendor__id__exact={vendor.pk}",
        "state filter": "?state__exact=TX",
        "outcome filter": "?outcome__exact=completed",
        "today filter": f"?received_at__gte={today}+00:00:00%2B00:00",
        "vendor + state + outcome": (
            f"?vendor__id__exact={vendor.pk}&state__exact=CA&outcome__exact=no_agent"
        ),
        "search request id": f"?q={sample.request_id}",
        "search phone": f"?q={sample.phone_number}",
        "search lead_id": f"?q={lead_id}",
        "one record": f"{sample.pk}/change/",
    }
    print(
        f"{'page':<26} {'median ms':>10} {'max ms':>8} {'SQL ms':>7} {'queries':>8}"
        f"   ({rows:,} rows; SQL ms: the median run's time in the database)"
    )
    for name, query in pages.items():
        runs = []
        for _ in range(repeats):
            with CaptureQueriesContext(connection) as queries:
                started = time.perf_counter()
                response = client.get(base + query)
                elapsed = (time.perf_counter() - started) * 1000
            assert response.status_code == 200, (name, response.status_code)
            sql = sum(float(q["time"]) for q in queries.captured_queries) * 1000
            runs.append((elapsed, sql, len(queries)))
        runs.sort()
        elapsed, sql, count = runs[len(runs) // 2]
        print(f"{name:<26} {elapsed:>10.1f} {runs[-1][0]:>8.1f} {sql:>7.1f} {count:>8}")


def drop() -> None:
    vendors = Vendor.objects.filter(name__startswith=VENDOR_PREFIX)
    # One DELETE statement: the ORM's delete() would fetch a million ids first.
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM calls_callrecord WHERE vendor_id IN (SELECT id FROM vendors_vendor"
            " WHERE name LIKE %s)",
            [f"{VENDOR_PREFIX}%"],
        )
        deleted = cursor.rowcount
    vendors.delete()
    print(f"deleted {deleted:,} generated rows")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--drop", action="store_true", help="delete the generated rows and stop")
    args = parser.parse_args()
    if args.drop:
        drop()
        return
    print(f"database: {connection.vendor}")
    fill(args.rows)
    measure(args.rows, args.repeats)


if __name__ == "__main__":
    main()
