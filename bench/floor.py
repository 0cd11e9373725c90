"""How long the operations floor and its charts take on a large table. Prints figures; asserts
nothing.

    createdb callrouting_bench   # a throwaway database
    DATABASE_URL=postgres://…/callrouting_bench python manage.py migrate
    DATABASE_URL=postgres://…/callrouting_bench python bench/floor.py --rows 1000000

Fills the call records to --rows over the last 30 days (one INSERT … generate_series), adds
--agents agents licensed for three states each with some of them held, on a call or offline, then
times each floor query and each floor page a few times (Django's test client: the whole view,
template included, without a network). `--explain` prints each chart query's plan.
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
from django.core.cache import cache  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from calls.floor import selectors  # noqa: E402
from calls.models import CallRecord  # noqa: E402
from config.database import database_timeouts_lifted  # noqa: E402
from routing.models import Agent, AgentLicense  # noqa: E402
from vendors.models import Vendor  # noqa: E402

VENDOR_PREFIX = "Floor Bench Vendor "
AGENT_PREFIX = "Floor Bench Agent TX "
STATES = ["AZ", "CA", "TX", "NY", "FL", "GA", "NC", "OH", "PA", "IL"]
# Twenty slots: about what a day of pings becomes (half find no agent).
OUTCOMES = (
    ["no_agent"] * 10 + ["completed"] * 4 + ["expired"] * 3 + ["repeat", "rejected", "connected"]
)
DAYS = 30


def bench_vendors() -> list[Vendor]:
    return [
        Vendor.objects.get_or_create(name=f"{VENDOR_PREFIX}{n}", defaults={"all_states": True})[0]
        for n in range(1, 6)
    ]


def fill(rows: int, agents: int) -> None:
    if connection.vendor != "postgresql":
        raise SystemExit("a PostgreSQL DATABASE_URL, please: the figures are PostgreSQL's")
    vendors = bench_vendors()
    have = CallRecord.objects.filter(vendor__in=vendors).count()
    started = time.perf_counter()
    if rows > have:
        spacing = DAYS * 86400 / rows  # seconds between two pings
        with database_timeouts_lifted(), connection.cursor() as cursor:
            cursor.execute(
                """
                INSERT INTO calls_callrecord (request_id, vendor_id, phone_number, state,
                    state_source, tracking, outcome, rejected_reason, transfer_target,
                    received_at, caller_id, call_status)
                SELECT gen_random_uuid(), (%s::bigint[])[1 + i %% 5],
                    '+1480' || lpad((i %% 10000000)::text, 7, '0'), (%s::text[])[1 + i / 7 %% 10],
                    'area_code', jsonb_build_object('lead_id', 'L-' || i, 'source', 'bench'),
                    (%s::text[])[1 + (i * 7) %% 20], '', '', now() - make_interval(secs => i * %s),
                    '', ''
                FROM generate_series(%s, %s) AS i
                """,
                [[v.pk for v in vendors], STATES, OUTCOMES, spacing, have + 1, rows],
            )
            cursor.execute("VACUUM ANALYZE calls_callrecord")
        print(f"inserted {rows - have:,} call records in {time.perf_counter() - started:.1f} s")
    else:
        print(f"table already holds {have:,} generated call records")
    if not Agent.objects.filter(name__startswith=AGENT_PREFIX).exists():
        now = timezone.now()
        made = Agent.objects.bulk_create(
            Agent(
                name=f"{AGENT_PREFIX}{n}",
                destination=f"sip:bench-{n}@example.invalid",
                status="offline" if n % 10 == 0 else "available",
                on_call_since=now if n % 4 == 1 else None,
                held_until=now + timedelta(hours=1) if n % 4 == 2 else None,
            )
            for n in range(1, agents + 1)
        )
        AgentLicense.objects.bulk_create(
            AgentLicense(agent=agent, state=STATES[(n + k) % len(STATES)])
            for n, agent in enumerate(made)
            for k in range(3)
        )
        print(f"made {agents} agents")


def timed(function, repeats: int) -> tuple[float, float, int]:
    """Median and max milliseconds of `function()`, and its number of queries."""
    runs = []
    for _ in range(repeats):
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            function()
            runs.append(((time.perf_counter() - started) * 1000, len(queries)))
    runs.sort()
    return runs[len(runs) // 2][0], runs[-1][0], runs[0][1]


def measure(rows: int, repeats: int, explain: bool) -> None:
    settings.ALLOWED_HOSTS = ["testserver"]
    now = timezone.now()
    vendor = Vendor.objects.get(name=f"{VENDOR_PREFIX}3")
    queries = {
        "agents by state": lambda: selectors.floor_agent_counts(now=now),
        "live holds": lambda: selectors.floor_live_holds(now=now),
        "calls in progress": lambda: selectors.floor_calls_now(now=now),
        "pings, last 15 min": lambda: selectors.floor_recent_pings(now=now),
        "transfer rate today": lambda: selectors.floor_transfer_rate_today(now=now),
        "chart: pings/hour, all": lambda: selectors.chart_pings_per_hour(now=now),
        "chart: pings/hour, vendor": lambda: selectors.chart_pings_per_hour(
            now=now, vendor_id=vendor.pk
        ),
        "chart: rate/day, all": lambda: selectors.chart_transfer_rate_per_day(now=now),
        "chart: rate/day, vendor": lambda: selectors.chart_transfer_rate_per_day(
            now=now, vendor_id=vendor.pk
        ),
    }
    user, _ = User.objects.get_or_create(
        username="bench-floor", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(user)
    base = f"/{settings.ADMIN_URL}"

    def page(url):
        def get():
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)

        return get

    pages = {
        "page: home (the floor)": page(base),
        "page: live part": page(f"{base}floor/live/"),
        "page: pings/hour JSON": page(f"{base}floor/charts/pings-per-hour.json"),
        "page: rate/day JSON": page(f"{base}floor/charts/transfer-rate-per-day.json"),
        "page: rate/day JSON, vendor": page(
            f"{base}floor/charts/transfer-rate-per-day.json?vendor={vendor.pk}"
        ),
    }
    print(
        f"{'query or page':<30} {'first ms':>9} {'median ms':>10} {'max ms':>8} {'queries':>8}"
        f"   ({rows:,} rows; first: with the shared cache empty)"
    )
    for name, function in {**queries, **pages}.items():
        function()  # warm the database's buffers: the first run reads the pages from disk
        cache.clear()
        first, _, _ = timed(function, 1)
        median, worst, count = timed(function, repeats)
        print(f"{name:<30} {first:>9.1f} {median:>10.1f} {worst:>8.1f} {count:>8}")
    if explain:
        for name in ("chart: pings/hour, all", "chart: rate/day, all", "chart: rate/day, vendor"):
            cache.clear()
            with CaptureQueriesContext(connection) as captured:
                queries[name]()
            sql = captured.captured_queries[0]["sql"]
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
                print(f"\n{name}\n" + "\n".join(row[0] for row in cursor.fetchall()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--agents", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--explain", action="store_true", help="print the charts' query plans")
    args = parser.parse_args()
    fill(args.rows, args.agents)
    measure(args.rows, args.repeats, args.explain)


if __name__ == "__main__":
    main()
