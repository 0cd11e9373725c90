"""Retention: call records older than CALL_RECORD_RETENTION_DAYS are archived, then deleted.

Whole calendar months (UTC) go together: a month is purged once every record in it is older than
the retention period. Its records are first written, with the export's columns (the JSON Lines
export, `calls.exports.writers.jsonl_chunks`), to one gzip file per month in
CALL_RECORD_ARCHIVE_DIR, `call-records-YYYY-MM.jsonl.gz`, written to a temporary name and renamed
into place when complete. Only then are the month's rows deleted, CALL_RECORD_PURGE_BATCH_ROWS at
a time, each batch its own short transaction touching only old rows, with a pause between batches:
pings insert new rows and never wait on them.

A month whose file exists was archived whole before any of its rows went; its remaining rows
(an interrupted purge) are deleted without writing it again. Rows of a month long past are never
added later: a ping's record is received now.

Rows that point at a deleted record follow its foreign keys' `on_delete`: SET_NULL (an inbound
call's record, a repeat's first ping) is set to null, CASCADE deletes, and a record that a
PROTECT or RESTRICT row still needs is kept.
"""

from __future__ import annotations

import gzip
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import OperationalError, connection, models, transaction
from django.db.models.deletion import CASCADE, PROTECT, RESTRICT, SET_NULL

from calls.exports.forms import CallRecordFilters
from calls.exports.sheet import export_sheet_for
from calls.exports.writers import jsonl_chunks
from calls.models import CallRecord
from config.database import database_timeouts_lifted

logger = logging.getLogger(__name__)

ARCHIVE_NAME = "call-records-{month:%Y-%m}.jsonl.gz"
# One purge at a time, whatever runs it (the beat task, the command): PostgreSQL's advisory lock.
_PURGE_LOCK = "hashtext('calls.retention.purge')"
# Tries of one batch before the purge gives up (the next run goes on), and the rest between two.
BATCH_ATTEMPTS = 5
BATCH_RETRY_SECONDS = 1.0


@dataclass
class MonthPurged:
    month: datetime  # its first moment, UTC
    archive: Path
    archived_rows: int  # 0 when the file was there already
    deleted_rows: int = 0
    kept_rows: int = 0  # still needed by a PROTECT or RESTRICT row


@dataclass
class PurgeResult:
    cutoff: datetime | None  # records received before it may go; None: retention is off
    months: list[MonthPurged] = field(default_factory=list)
    finished: bool = True  # False: stopped at the deadline, the next run goes on
    skipped: bool = False  # another purge was running

    @property
    def deleted_rows(self) -> int:
        return sum(month.deleted_rows for month in self.months)


def month_start(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC)
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month(start: datetime) -> datetime:
    return (start + timedelta(days=32)).replace(day=1)


def retention_cutoff(*, now: datetime, days: int) -> datetime | None:
    """The first moment kept: the start of the month holding `now - days`. None when `days` is 0
    (keep forever)."""
    if days <= 0:
        return None
    return month_start(now - timedelta(days=days))


def call_records_purge(
    *,
    now: datetime,
    days: int | None = None,
    archive_dir: Path | None = None,
    batch_rows: int | None = None,
    pause_seconds: float | None = None,
    deadline: float | None = None,
    progress: Callable[[MonthPurged], None] | None = None,
) -> PurgeResult:
    """Archive and delete the call records of every month older than the retention period.

    `deadline` (time.monotonic()) stops it between batches; the next run goes on where it
    stopped. Defaults come from the CALL_RECORD_* settings.
    """
    days = settings.CALL_RECORD_RETENTION_DAYS if days is None else days
    cutoff = retention_cutoff(now=now, days=days)
    result = PurgeResult(cutoff=cutoff)
    if cutoff is None:
        return result
    archive_dir = Path(archive_dir or settings.CALL_RECORD_ARCHIVE_DIR)
    batch_rows = batch_rows or settings.CALL_RECORD_PURGE_BATCH_ROWS
    if pause_seconds is None:
        pause_seconds = settings.CALL_RECORD_PURGE_PAUSE_MS / 1000
    if not _purge_lock():
        result.skipped = True
        return result
    try:
        archive_dir.mkdir(parents=True, exist_ok=True)
        oldest = (
            CallRecord.objects.filter(received_at__lt=cutoff)
            .order_by("received_at")
            .values_list("received_at", flat=True)
            .first()
        )
        start = month_start(oldest) if oldest is not None else cutoff
        while start < cutoff:
            end = next_month(start)
            if CallRecord.objects.filter(received_at__gte=start, received_at__lt=end).exists():
                if deadline is not None and time.monotonic() >= deadline and result.months:
                    result.finished = False  # no new month's archive past the deadline
                    break
                month = _month_archive(start, end, archive_dir)
                result.months.append(month)
                if not _month_delete(month, end, batch_rows, pause_seconds, deadline, progress):
                    result.finished = False
                    break
            start = end
    finally:
        _purge_unlock()
    return result


def _month_archive(start: datetime, end: datetime, archive_dir: Path) -> MonthPurged:
    """The month's records to its gzip file, unless it is there already."""
    path = archive_dir / ARCHIVE_NAME.format(month=start)
    month = MonthPurged(month=start, archive=path, archived_rows=0)
    if path.exists():
        return month
    temporary = path.with_name(f".{path.name}.{os.getpid()}.partial")
    rows = 0
    with database_timeouts_lifted():  # a month of rows, read once through a server-side cursor
        sheet = export_sheet_for(filters=CallRecordFilters(since=start, until=end))
        with gzip.open(temporary, "wt", encoding="utf-8", newline="") as archive:
            for chunk in jsonl_chunks(sheet):
                archive.write(chunk)
                rows += chunk.count("\n")
            archive.flush()
            os.fsync(archive.fileno())
    temporary.rename(path)
    month.archived_rows = rows
    logger.info("Archived %s call records of %s to %s", rows, f"{start:%Y-%m}", path)
    return month


def _month_delete(
    month: MonthPurged,
    end: datetime,
    batch_rows: int,
    pause_seconds: float,
    deadline: float | None,
    progress: Callable[[MonthPurged], None] | None,
) -> bool:
    """Delete the month's records in batches; False when the deadline stopped it. Django's own
    `delete()` would load every row to send signals; `_raw_delete` is one DELETE, the references
    released just before in the same transaction."""
    after_id = 0
    failures = 0
    while True:
        if deadline is not None and time.monotonic() >= deadline:
            return False
        try:
            batch = _batch_delete(month, end, after_id, batch_rows)
        except OperationalError:
            # A batch that hit the web's short timeouts (a busy database) is rolled back whole:
            # try it again after a rest, on a fresh connection, holding the purge's lock again.
            failures += 1
            if failures >= BATCH_ATTEMPTS:
                raise
            logger.warning("Retention: a batch failed, trying again", exc_info=True)
            connection.close()
            time.sleep(BATCH_RETRY_SECONDS)
            if not _purge_lock():
                return False  # another purge started meanwhile: it goes on
            continue
        failures = 0
        if batch is None:
            return True
        after_id = batch
        if progress:
            progress(month)
        if pause_seconds:
            time.sleep(pause_seconds)


def _batch_delete(month: MonthPurged, end: datetime, after_id: int, batch_rows: int) -> int | None:
    """One batch in its own transaction: the last id it went through, or None when no rows
    are left."""
    with transaction.atomic():
        ids = list(
            CallRecord.objects.filter(
                received_at__gte=month.month, received_at__lt=end, id__gt=after_id
            )
            .order_by("id")
            .values_list("id", flat=True)[:batch_rows]
        )
        if not ids:
            return None
        needed = _ids_still_needed(ids)
        deletable = [pk for pk in ids if pk not in needed]
        _release_references(deletable)
        deleted = CallRecord.objects.filter(id__in=deletable)._raw_delete(CallRecord.objects.db)
    month.deleted_rows += deleted
    month.kept_rows += len(needed)
    return ids[-1]


def _references() -> list[tuple[models.ForeignObjectRel, type[models.Model]]]:
    """The foreign keys that point at call records, each with the model that holds it."""
    references = []
    for relation in CallRecord._meta.related_objects:
        model = relation.related_model
        if (relation.field.many_to_one or relation.field.one_to_one) and not isinstance(model, str):
            references.append((relation, model))
    return references


def _ids_still_needed(ids: list[int]) -> set[int]:
    needed: set[int] = set()
    for relation, model in _references():
        if relation.on_delete in (PROTECT, RESTRICT):
            column = relation.field.name
            needed.update(
                model._base_manager.filter(**{f"{column}__in": ids}).values_list(
                    relation.field.attname, flat=True
                )
            )
    return needed


def _release_references(ids: list[int]) -> None:
    """What points at the records about to go, as each foreign key's on_delete says."""
    if not ids:
        return
    for relation, model in _references():
        column = relation.field.name
        pointing = model._base_manager.filter(**{f"{column}__in": ids})
        if model is CallRecord:
            pointing = pointing.exclude(id__in=ids)  # going in the same batch
        if relation.on_delete is SET_NULL:
            pointing.update(**{column: None})
        elif relation.on_delete is CASCADE:
            pointing.delete()


def _purge_lock() -> bool:
    if connection.vendor != "postgresql":
        return True  # SQLite serializes writers
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT pg_try_advisory_lock({_PURGE_LOCK})")
        return bool(cursor.fetchone()[0])


def _purge_unlock() -> None:
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT pg_advisory_unlock({_PURGE_LOCK})")
