"""Every export's audit row, the streamed exports (CSV, JSON Lines) and the XLSX background job."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.db import connections, transaction
from django.utils import timezone

from calls.exports.forms import CallRecordFilters
from calls.exports.selectors import call_record_select
from calls.exports.sheet import ExportSheet, export_sheet_for
from calls.exports.writers import (
    Progress,
    csv_chunks,
    excel_rows_check,
    jsonl_chunks,
    xlsx_write,
)
from calls.models import CallExport
from config.database import analytics_db, database_timeouts_lifted
from config.errors import ApplicationError

logger = logging.getLogger(__name__)

EXPORT_PERMISSION = "calls.export_callrecord"
MESSAGE_FORBIDDEN = "You do not have permission to export call records."


class ExportForbidden(ApplicationError):
    status = 403
    message = MESSAGE_FORBIDDEN


# --- Services --------------------------------------------------------------------------------


def _require_permission(user) -> None:
    """None is the command line: whoever runs it already holds the database."""
    if user is not None and not user.has_perm(EXPORT_PERMISSION):
        raise ExportForbidden()


@dataclass
class ExportStream:
    """An export being streamed: its audit row and its chunks."""

    export: CallExport
    chunks: Iterator[str | bytes]
    content_type: str
    filename: str


def call_export_record(
    *, user, source: str, filters: CallRecordFilters, export_format: str, **fields
) -> CallExport:
    """The audit row every export starts with: who, from where, which filters, which format."""
    return CallExport.objects.create(
        requested_by=user,
        source=source,
        filters=filters.as_json(),
        format=export_format,
        **fields,
    )


def _export_begin(
    *, user, source: str, filters: CallRecordFilters, export_format: str
) -> tuple[ExportSheet, CallExport]:
    """The selection to write, and its audit row, running from now. Read on the analysts'
    replica when there is one (`analytics_db`)."""
    using = analytics_db()
    with database_timeouts_lifted(using=using):  # a whole selection takes longer than a ping
        sheet = export_sheet_for(filters=filters, using=using)
        row_count = sheet.records.count()
    export = call_export_record(
        user=user,
        source=source,
        filters=filters,
        export_format=export_format,
        status=CallExport.Status.RUNNING,
        row_count=row_count,
    )
    return sheet, export


def call_export_stream(
    *,
    user,
    filters: CallRecordFilters,
    export_format: str,
    source: str,
    bom: bool = False,
    progress: Progress | None = None,
    now: datetime | None = None,
) -> ExportStream:
    """Start a CSV or JSON Lines export: the audit row now, the rows as they are read.

    The audit row holds the selection's size from the start and the rows actually sent at the
    end; a download that stops half-way is marked failed with the rows it got.
    """
    _require_permission(user)
    if export_format not in (CallExport.Format.CSV, CallExport.Format.JSONL):
        raise ApplicationError(f"Streaming is for CSV and JSON Lines, not {export_format}.")
    sheet, export = _export_begin(
        user=user, source=source, filters=filters, export_format=export_format
    )
    rows_seen = [0]

    def count(rows: int) -> None:
        rows_seen[0] = rows
        if progress:
            progress(rows)

    if export_format == CallExport.Format.CSV:
        chunks = csv_chunks(sheet, bom=bom, progress=count)
        content_type = "text/csv; charset=utf-8"
    else:
        chunks = jsonl_chunks(sheet, progress=count)
        content_type = "application/x-ndjson; charset=utf-8"
    return ExportStream(
        export=export,
        chunks=_audited(export, chunks, rows_seen, using=sheet.records.db),
        content_type=content_type,
        filename=export_filename(export_format, now=now),
    )


def _audited(
    export: CallExport, chunks: Iterator[str | bytes], rows_seen: list[int], *, using: str
) -> Iterator[str | bytes]:
    finished = False
    try:
        # On PostgreSQL one read-only transaction lets the server-side cursor hand rows over as
        # they are read; outside one, Django's cursor WITH HOLD first copies the whole result.
        # Not on SQLite, where a transaction would hold the write lock pings need.
        with database_timeouts_lifted(using=using):
            if connections[using].vendor == "postgresql":
                with transaction.atomic(using=using):
                    yield from chunks
            else:
                yield from chunks
        finished = True
    finally:
        status = CallExport.Status.DONE if finished else CallExport.Status.FAILED
        CallExport.objects.filter(pk=export.pk).update(
            status=status,
            rows_written=rows_seen[0],
            finished_at=timezone.now(),
            error="" if finished else f"Stopped after {rows_seen[0]:,} rows.",
        )


def export_filename(export_format: str, *, now: datetime | None = None) -> str:
    moment = (now or timezone.now()).astimezone(UTC)
    return f"call-records-{moment:%Y%m%d-%H%M%S}.{export_format}"


def call_export_start(
    *, user, filters: CallRecordFilters, source: str, defer: bool = True
) -> CallExport:
    """Queue an XLSX export for the background job; refuses what Excel cannot hold."""
    _require_permission(user)
    using = analytics_db()
    with database_timeouts_lifted(using=using):
        rows = call_record_select(filters=filters, using=using).count()
    excel_rows_check(rows)
    export = call_export_record(
        user=user,
        source=source,
        filters=filters,
        export_format=CallExport.Format.XLSX,
        status=CallExport.Status.PENDING,
        row_count=rows,
    )
    if defer:
        transaction.on_commit(lambda: _enqueue_xlsx(export.pk))
    return export


def _enqueue_xlsx(export_id: int) -> None:
    from calls.tasks import call_export_xlsx

    try:
        call_export_xlsx.delay(export_id)
    except Exception:  # the broker is down: say so on the progress page, not with a 500
        logger.exception("Could not queue export %s", export_id)
        CallExport.objects.filter(pk=export_id, status=CallExport.Status.PENDING).update(
            status=CallExport.Status.FAILED,
            error="The job queue could not be reached; nothing was exported. Try again later.",
            finished_at=timezone.now(),
        )


def call_export_run(*, export_id: int, now: datetime | None = None) -> CallExport | None:
    """The XLSX job: claim the pending export, write its file, report progress as it goes.

    Claimed by a conditional update, so a task delivered twice writes the file once.
    """
    claimed = CallExport.objects.filter(pk=export_id, status=CallExport.Status.PENDING).update(
        status=CallExport.Status.RUNNING
    )
    if not claimed:
        logger.info("Export %s is not pending; nothing to do", export_id)
        return None
    export = CallExport.objects.get(pk=export_id)
    name = f"exports/call-records-{export.pk}.xlsx"
    path = Path(settings.MEDIA_ROOT) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".xlsx.part")

    def progress(rows: int) -> None:
        CallExport.objects.filter(pk=export.pk).update(rows_written=rows)

    try:
        using = analytics_db()
        with database_timeouts_lifted(using=using):
            sheet = export_sheet_for(
                filters=CallRecordFilters.from_json(export.filters), using=using
            )
            written = xlsx_write(sheet, partial, progress=progress)
        os.replace(partial, path)
    except Exception as exc:
        partial.unlink(missing_ok=True)
        message = exc.message if isinstance(exc, ApplicationError) else "The export failed."
        if not isinstance(exc, ApplicationError):
            logger.exception("Export %s failed", export.pk)
        CallExport.objects.filter(pk=export.pk).update(
            status=CallExport.Status.FAILED, error=message, finished_at=now or timezone.now()
        )
        export.refresh_from_db()
        return export
    export.file.name = name
    export.rows_written = written
    export.status = CallExport.Status.DONE
    export.finished_at = now or timezone.now()
    export.save(update_fields=["file", "rows_written", "status", "finished_at"])
    return export


def call_export_write_file(
    *,
    user,
    filters: CallRecordFilters,
    export_format: str,
    source: str,
    output: IO[Any] | Path,
    progress: Progress | None = None,
) -> CallExport:
    """The command line's export: any format, written to a file or stream, audited."""
    if export_format != CallExport.Format.XLSX:
        stream = call_export_stream(
            user=user,
            filters=filters,
            export_format=export_format,
            source=source,
            progress=progress,
        )
        if isinstance(output, Path):
            raise TypeError("Only an XLSX export is written to a path.")
        for chunk in stream.chunks:
            # PostgreSQL's blocks are whole rows of UTF-8: they decode on their own.
            output.write(chunk.decode() if isinstance(chunk, bytes) else chunk)
        stream.export.refresh_from_db()
        return stream.export

    _require_permission(user)
    sheet, export = _export_begin(
        user=user, source=source, filters=filters, export_format=export_format
    )
    try:
        with database_timeouts_lifted(using=sheet.records.db):
            written = xlsx_write(sheet, output, progress=progress)
    except ApplicationError as exc:
        export.status, export.error = CallExport.Status.FAILED, exc.message
        export.finished_at = timezone.now()
        export.save(update_fields=["status", "error", "finished_at"])
        raise
    export.status, export.rows_written = CallExport.Status.DONE, written
    export.finished_at = timezone.now()
    export.save(update_fields=["status", "rows_written", "finished_at"])
    return export
