"""Retention: old call records archived a file per month, then deleted in small batches."""

import gzip
import io
import json
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.db import connection, connections, transaction

from calls.exports.forms import CallRecordFilters
from calls.exports.sheet import export_sheet_for
from calls.exports.writers import jsonl_chunks
from calls.models import CallRecord, InboundCall
from calls.retention import call_records_purge, retention_cutoff
from calls.tasks import purge_call_records
from tests.factories import CallRecordFactory, VendorFactory

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


def _received(year: int, month: int, day: int, hour: int = 10) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


def _export_lines(since: datetime, until: datetime) -> list[str]:
    sheet = export_sheet_for(filters=CallRecordFilters(since=since, until=until))
    return "".join(jsonl_chunks(sheet)).splitlines()


def _archive_lines(path) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as archive:
        return archive.read().splitlines()


@pytest.fixture
def history(db):
    """Records in January, February and March 2026 (March's last moment included), and June."""
    vendor = VendorFactory(name="Acme Leads")
    records = {
        "january": [
            CallRecordFactory(
                vendor=vendor,
                received_at=_received(2026, 1, day),
                tracking={"lead_id": f"J-{day}", "score": day},
            )
            for day in (1, 15, 31)
        ],
        "february": [CallRecordFactory(vendor=vendor, received_at=_received(2026, 2, 10))],
        "march": [
            CallRecordFactory(
                vendor=vendor,
                received_at=datetime(2026, 3, 31, 23, 59, 59, tzinfo=UTC),
                tracking={"note": "=SUM(A1)"},
            )
        ],
        "june": [CallRecordFactory(vendor=vendor, received_at=_received(2026, 6, 14))],
    }
    return records


def test_retention_is_off_at_zero_days_and_keeps_everything(history, tmp_path):
    result = call_records_purge(now=NOW, days=0, archive_dir=tmp_path)

    assert result.cutoff is None
    assert CallRecord.objects.count() == 6
    assert list(tmp_path.iterdir()) == []


def test_the_cutoff_is_the_start_of_the_month_holding_the_oldest_day_kept():
    assert retention_cutoff(now=NOW, days=90) == datetime(2026, 3, 1, tzinfo=UTC)
    assert retention_cutoff(now=NOW, days=0) is None


def test_it_archives_each_whole_month_as_the_export_writes_it_then_deletes_it(history, tmp_path):
    january = _export_lines(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC))
    february = _export_lines(datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC))

    # 90 days before 15 June is 17 March: March stays whole, January and February go.
    result = call_records_purge(now=NOW, days=90, archive_dir=tmp_path, batch_rows=2)

    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "call-records-2026-01.jsonl.gz",
        "call-records-2026-02.jsonl.gz",
    ]
    assert _archive_lines(tmp_path / "call-records-2026-01.jsonl.gz") == january
    assert _archive_lines(tmp_path / "call-records-2026-02.jsonl.gz") == february
    assert len(january) == 3
    assert json.loads(january[0])["tracking"] == {"lead_id": "J-1", "score": 1}
    assert result.deleted_rows == 4
    assert [month.archived_rows for month in result.months] == [3, 1]
    kept = set(CallRecord.objects.values_list("id", flat=True))
    assert kept == {history["march"][0].id, history["june"][0].id}


def test_references_to_deleted_records_are_released(history, tmp_path):
    first = history["january"][0]
    repeat_kept = CallRecordFactory(
        vendor=first.vendor, received_at=_received(2026, 6, 1), repeat_of=first,
        outcome=CallRecord.Outcome.REPEAT,
    )  # fmt: skip
    repeat_gone = CallRecordFactory(
        vendor=first.vendor, received_at=_received(2026, 1, 1, 11), repeat_of=first,
        outcome=CallRecord.Outcome.REPEAT,
    )  # fmt: skip
    inbound = InboundCall.objects.create(
        call_sid="CA1", to_number="+18885550100", match=InboundCall.Match.MATCHED,
        call_record=first, received_at=_received(2026, 1, 1, 11),
    )  # fmt: skip

    call_records_purge(now=NOW, days=90, archive_dir=tmp_path, batch_rows=1)

    repeat_kept.refresh_from_db()
    inbound.refresh_from_db()
    assert repeat_kept.repeat_of is None
    assert inbound.call_record is None
    assert not CallRecord.objects.filter(id__in=[first.id, repeat_gone.id]).exists()


def test_an_interrupted_purge_goes_on_without_writing_the_month_again(history, tmp_path):
    stopped = call_records_purge(now=NOW, days=90, archive_dir=tmp_path, batch_rows=1, deadline=0.0)
    archive = tmp_path / "call-records-2026-01.jsonl.gz"
    written = archive.read_bytes()

    assert stopped.finished is False
    assert CallRecord.objects.count() == 6

    again = call_records_purge(now=NOW, days=90, archive_dir=tmp_path, batch_rows=1)

    assert again.finished is True
    assert archive.read_bytes() == written
    assert again.months[0].archived_rows == 0
    assert CallRecord.objects.count() == 2
    assert len(_archive_lines(archive)) == 3


def test_the_command_reports_what_it_archived_and_deleted(history, tmp_path, settings):
    settings.CALL_RECORD_ARCHIVE_DIR = tmp_path
    settings.CALL_RECORD_RETENTION_DAYS = 30
    out = io.StringIO()

    call_command("purge_call_records", "--dry-run", stdout=out)
    assert CallRecord.objects.count() == 6
    call_command("purge_call_records", stdout=out)

    text = out.getvalue()
    assert "would go" in text
    assert "2026-01: 3 archived" in text
    # 30 days before the real today: every 2026 record up to last month goes.
    assert "deleted" in text
    assert not CallRecord.objects.filter(received_at__lt=_received(2026, 4, 1, 0)).exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_batches_are_short_transactions_that_never_hold_up_a_new_record(tmp_path):
    """While the purge deletes old rows batch by batch, inserting a new record (what a ping
    writes) never waits on it: each batch commits on its own and locks only old rows."""
    vendor = VendorFactory()
    CallRecord.objects.bulk_create(
        CallRecord(
            vendor=vendor, phone_number=f"+1480555{index:04d}", state="AZ",
            state_source=CallRecord.StateSource.AREA_CODE, outcome=CallRecord.Outcome.NO_AGENT,
            received_at=_received(2026, 1, 1) + timedelta(seconds=index), tracking={},
        )
        for index in range(3000)
    )  # fmt: skip
    inserts: list[float] = []
    purging = threading.Event()

    def insert_while_purging():
        try:
            purging.wait(10)
            with connections["default"].cursor() as cursor:
                cursor.execute("SET lock_timeout = '200ms'")
            for _ in range(20):
                started = datetime.now(UTC)
                CallRecordFactory(vendor=vendor, received_at=datetime.now(UTC))
                inserts.append((datetime.now(UTC) - started).total_seconds())
        finally:
            connections.close_all()

    thread = threading.Thread(target=insert_while_purging)
    thread.start()
    progressed = []

    def progress(month):
        progressed.append(month.deleted_rows)
        purging.set()

    result = call_records_purge(
        now=NOW, days=90, archive_dir=tmp_path, batch_rows=100, pause_seconds=0.005,
        progress=progress,
    )  # fmt: skip
    thread.join(30)

    assert result.deleted_rows == 3000
    assert progressed[:3] == [100, 200, 300]  # batch by batch, each committed
    assert len(inserts) == 20
    assert max(inserts) < 0.2
    assert CallRecord.objects.count() == 20
    assert connection.vendor == "postgresql"


def test_beat_runs_the_purge_daily(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["purge-call-records"]

    assert (entry["task"], entry["schedule"]) == ("calls.purge_call_records", 24 * 60 * 60.0)


def test_the_worker_archives_and_deletes_old_records(celery_stack, settings, tmp_path):
    settings.CALL_RECORD_RETENTION_DAYS = 30
    settings.CALL_RECORD_ARCHIVE_DIR = tmp_path
    old = CallRecordFactory(received_at=_received(2025, 1, 10))
    recent = CallRecordFactory()

    with celery_stack.running(beat=False):
        celery_stack.run(purge_call_records, timeout=30)

    assert list(CallRecord.objects.values_list("id", flat=True)) == [recent.id]
    lines = _archive_lines(tmp_path / "call-records-2025-01.jsonl.gz")
    assert [json.loads(line)["request_id"] for line in lines] == [str(old.request_id)]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_batch_that_times_out_on_a_lock_is_tried_again(tmp_path, settings):
    """Another transaction holding an old record (a staff edit, say) makes the batch's delete
    wait past the lock timeout; the purge rests, tries again, and finishes once it is free."""
    old = CallRecordFactory(received_at=_received(2026, 1, 5))
    holding, released = threading.Event(), threading.Event()

    def hold_the_record():
        try:
            with transaction.atomic():
                CallRecord.objects.select_for_update().get(pk=old.pk)
                holding.set()
                time.sleep(1.5)
            released.set()
        finally:
            connections.close_all()

    thread = threading.Thread(target=hold_the_record)
    thread.start()
    holding.wait(10)
    with connections["default"].cursor() as cursor:
        cursor.execute("SET lock_timeout = '200ms'")

    result = call_records_purge(now=NOW, days=90, archive_dir=tmp_path, pause_seconds=0)
    thread.join(10)

    assert released.is_set()
    assert result.finished is True
    assert result.deleted_rows == 1
    assert not CallRecord.objects.exists()
