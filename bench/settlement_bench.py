"""Benchmark of the settlement pages on PostgreSQL: `make bench-settlement`.

Seeds a dedicated database (BENCH_SETTLEMENT_DATABASE_URL, default `callrouting_bench_settlement`
on the local server) with BENCH_ROWS call records (default 1,000,000: a month of pings from 20
vendors, settled as the lifecycle settles them) in one SQL statement, then times, each a few
times (the median is printed):
- the scorecards of every vendor over the whole month and over one week (`vendor_scorecards`);
- one vendor's statement over the month (`vendor_statement`);
and prints PostgreSQL's plan of the month's scorecards, so one can see it reads the rows once.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.export_bench import (  # the export bench's database helpers
    ROOT,
    _create_database,
    _django_env,
    _load,
    _setup_django,
    _without_password,
)

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/callrouting_bench_settlement"
MONTH = (datetime(2025, 9, 1, tzinfo=UTC), datetime(2025, 10, 1, tzinfo=UTC))
WEEK = (datetime(2025, 9, 8, tzinfo=UTC), datetime(2025, 9, 15, tzinfo=UTC))
ROUNDS = 5

# A month of pings (one every 2.6 s): outcomes in the proportions of a busy floor, each settled
# as the lifecycle would settle it; about one call in four under the minimum talk time.
SEED_SQL = """
INSERT INTO calls_callrecord (
    request_id, vendor_id, phone_number, state, state_source, tracking, outcome,
    rejected_reason, transfer_target, agent_count, ttl_seconds, received_at,
    connected_at, ended_at, duration_seconds, caller_id, caller_id_matches, call_status,
    billable, not_billable_reason, payout, payout_currency, billing_rule_id, billing_decided_at
)
SELECT
    md5('settle-' || i)::uuid,
    (%(vendors)s)[1 + i %% cardinality(%(vendors)s)],
    '+1480' || lpad((i %% 10000000)::text, 7, '0'),
    (ARRAY['AZ', 'CA', 'TX', 'FL', 'NY'])[1 + i %% 5],
    'area_code',
    jsonb_build_object('lead_id', 'L-' || i),
    outcome,
    '',
    CASE WHEN outcome IN ('no_agent', 'rejected') THEN '' ELSE '+18775703926' END,
    1,
    60,
    received,
    CASE WHEN outcome IN ('connected', 'completed') THEN received + interval '20 seconds' END,
    CASE WHEN outcome = 'completed' THEN received + interval '200 seconds' END,
    CASE WHEN outcome = 'completed' THEN talk END,
    '',
    CASE WHEN outcome IN ('connected', 'completed') THEN i %% 9 <> 0 END,
    CASE WHEN outcome = 'completed' THEN 'completed' WHEN outcome = 'connected' THEN 'answered'
         ELSE '' END,
    CASE WHEN outcome IN ('reserved', 'connected') THEN 'pending'
         WHEN outcome = 'completed' AND talk >= 90 AND i %% 17 <> 0 THEN 'yes'
         ELSE 'no' END,
    CASE WHEN outcome IN ('reserved', 'connected') THEN ''
         WHEN outcome = 'completed' AND talk < 90 THEN 'under_minimum'
         WHEN outcome = 'completed' AND i %% 17 = 0 THEN 'duplicate'
         WHEN outcome = 'completed' THEN ''
         WHEN outcome = 'expired' THEN 'no_call'
         ELSE outcome END,
    CASE WHEN outcome = 'completed' AND talk >= 90 AND i %% 17 <> 0 THEN 25.00
         WHEN outcome IN ('reserved', 'connected') THEN NULL ELSE 0 END,
    CASE WHEN outcome = 'completed' THEN 'USD' ELSE '' END,
    CASE WHEN outcome = 'completed' THEN (%(rules)s)[1 + i %% cardinality(%(rules)s)] END,
    CASE WHEN outcome IN ('reserved', 'connected') THEN NULL ELSE received END
FROM (
    SELECT i,
           %(start)s::timestamptz + i * interval '2.6 seconds' AS received,
           (i * 37) %% 400 AS talk,
           (ARRAY['completed', 'completed', 'expired', 'no_agent', 'repeat', 'rejected',
                  'connected', 'reserved', 'completed', 'expired'])[1 + i %% 10] AS outcome
    FROM generate_series(1, %(rows)s) AS i
) AS seed
"""


def main() -> None:
    url = os.environ.get("BENCH_SETTLEMENT_DATABASE_URL", DEFAULT_URL)
    rows = int(os.environ.get("BENCH_ROWS", "1000000"))
    # The seed is one long statement; the pages run with the admin's long timeouts anyway.
    env = {**_django_env(url), "DATABASE_STATEMENT_TIMEOUT_MS": "0"}
    print(f"Benchmark database: {_without_password(url)}; {rows:,} call records")
    print(f"Machine: {os.cpu_count()} cores, load average {_load()} at start")
    _create_database(url)
    import subprocess

    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env={**os.environ, **env},
        check=True,
    )
    os.environ.update(env)
    _setup_django()
    _seed(rows)
    _measure()
    print(f"Load average at the end: {_load()}")


def _seed(rows: int) -> None:
    from decimal import Decimal

    from django.db import connection, transaction

    from calls.models import CallRecord
    from calls.settlement.models import BillingRule
    from vendors.models import Vendor

    if CallRecord.objects.count() == rows:
        print(f"Seed: {rows:,} call records already there")
        return
    started = time.monotonic()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE calls_callrecord CASCADE")
        vendors = [
            Vendor.objects.get_or_create(
                name=f"Bench Vendor {index:02d}", defaults={"all_states": True}
            )[0]
            for index in range(1, 21)
        ]
        rules = [
            BillingRule.objects.get_or_create(
                vendor=vendor,
                effective_from=datetime(2025, 1, 1, tzinfo=UTC),
                defaults={"payout": Decimal("25.00")},
            )[0].pk
            for vendor in vendors
        ]
        with connection.cursor() as cursor:
            cursor.execute(
                SEED_SQL,
                {
                    "vendors": [vendor.pk for vendor in vendors],
                    "rules": rules,
                    "start": MONTH[0],
                    "rows": rows,
                },
            )
            cursor.execute("ANALYZE calls_callrecord")
    print(f"Seed: {rows:,} call records in {time.monotonic() - started:.1f} s")


def _timed(function) -> tuple[float, object]:
    times, result = [], None
    for _ in range(ROUNDS):
        started = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def _measure() -> None:
    from django.db import connection

    from calls.models import CallRecord
    from calls.settlement import scorecards
    from calls.settlement.scorecards import vendor_scorecards
    from calls.settlement.statements import named_apart, vendor_statement
    from vendors.models import Vendor

    vendor = Vendor.objects.get(name="Bench Vendor 01")
    print(f"{'page':<42}{'records':>10}{'median s':>10}  (of {ROUNDS} runs)")
    for label, period in (("scorecards, 20 vendors, the month", MONTH), ("… one week", WEEK)):
        seconds, cards = _timed(
            lambda period=period: vendor_scorecards(since=period[0], until=period[1])
        )
        count = sum(row.pings for row in cards.rows)  # type: ignore[attr-defined]
        print(f"{label:<42}{count:>10,}{seconds:>10.2f}")
    seconds, statement = _timed(
        lambda: vendor_statement(vendor=vendor, since=MONTH[0], until=MONTH[1])
    )
    count = statement.total.pings  # type: ignore[attr-defined]
    print(f"{'statement, one vendor, the month':<42}{count:>10,}{seconds:>10.2f}")

    records = CallRecord.objects.filter(received_at__gte=MONTH[0], received_at__lt=MONTH[1])
    grouped = records.order_by().values("vendor_id", "vendor__name")
    query = grouped.annotate(**named_apart(scorecards._aggregates()))
    sql, params = query.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {sql}", params)
        print("Plan of the month's scorecards:")
        for (line,) in cursor.fetchall():
            print("  " + line)


if __name__ == "__main__":
    main()
