"""Analyst exports of call records: one selection, three formats, safe to open in a spreadsheet.

The admin, the reporting API and the `export_calls` command all go through here:
- `CallRecordFilterForm` reads a selection (period, vendors, states, outcomes, search) from
  query parameters or command options; `call_record_select` turns it into a queryset.
- Every vendor tracking key in the selection becomes its own column, after the record's own
  fields, in sorted order; the keys are collected by the database, not by loading the rows.
- CSV and JSON Lines stream: rows are read through a server-side cursor (PostgreSQL) in chunks
  and written out as they come, so memory does not grow with the row count.
- XLSX is written by a background job in XlsxWriter's constant-memory mode.
- CSV and XLSX cells that a spreadsheet would read as a formula are neutralized; JSON Lines
  carries the tracking data verbatim.
- Every export leaves a `CallExport` row: who, when, which filters, how many rows.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import os
import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from django import forms
from django.conf import settings
from django.core.exceptions import EmptyResultSet
from django.db import connection, transaction
from django.db.models import F, Field, Func, Q, QuerySet, TextField
from django.db.models.functions import Cast
from django.http import QueryDict
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from calls.models import CallExport, CallRecord
from calls.services import format_timestamp
from config.database import database_timeouts_lifted
from config.errors import ApplicationError
from vendors.models import Vendor
from vendors.states import STATE_CHOICES

logger = logging.getLogger(__name__)

EXPORT_PERMISSION = "calls.export_callrecord"
# Excel's sheet holds 1,048,576 rows; the header takes one.
EXCEL_MAX_DATA_ROWS = 1_048_576 - 1
EXCEL_MAX_COLUMNS = 16_384
# Rows fetched per round trip, and rows between two progress reports of a background job.
FETCH_CHUNK_ROWS = 2_000
PROGRESS_EVERY_ROWS = 5_000

# The record's own columns, in the order analysts read them: header and queryset path.
RECORD_COLUMNS: list[tuple[str, str]] = [
    ("request_id", "request_id"),
    ("received_at", "received_at"),
    ("vendor", "vendor__name"),
    ("phone_number", "phone_number"),
    ("state", "state"),
    ("state_source", "state_source"),
    ("outcome", "outcome"),
    ("rejected_reason", "rejected_reason"),
    ("transfer_target", "transfer_target"),
    ("agent", "agent__name"),
    ("agent_count", "agent_count"),
    ("ttl_seconds", "ttl_seconds"),
    ("connected_at", "connected_at"),
    ("ended_at", "ended_at"),
    ("duration_seconds", "duration_seconds"),
]
RECORD_HEADERS = [header for header, _ in RECORD_COLUMNS]
_RECORD_PATHS = [path for _, path in RECORD_COLUMNS]
# A tracking key that cannot be a column name as it is gets this prefix (`tracking_column_name`).
TRACKING_PREFIX = "tracking."

MESSAGE_FORBIDDEN = "You do not have permission to export call records."


class ExportForbidden(ApplicationError):
    status = 403
    message = MESSAGE_FORBIDDEN


class ExportTooLarge(ApplicationError):
    status = 400


class InvalidFilters(ApplicationError):
    status = 400

    def __init__(self, errors: dict[str, list[str]]):
        self.errors = errors
        first = next(iter(errors.values()), ["Invalid filters."])
        super().__init__(first[0])


# --- Cells that a spreadsheet must not read as formulas ---------------------------------------

# One rule, written once here: the Python writers call `cell_neutralize`, and PostgreSQL's COPY
# runs the same rule as SQL built from these two values (`_Neutralized`).
# OWASP's characters, and their full-width forms, which some spreadsheets read the same way.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
# A plain number (a negative amount, an E.164 phone number) is read by a spreadsheet as the
# number it is; no formula can hide in it, so it is left as it is. ASCII digits only: digits of
# other scripts (`-١٢`) are text to a spreadsheet, and neutralized like any other text.
PLAIN_NUMBER_PATTERN = "[+-]?[0-9]+([.][0-9]+)?"
_PLAIN_NUMBER = re.compile(PLAIN_NUMBER_PATTERN)


def cell_neutralize(text: str) -> str:
    """OWASP's CSV-injection advice: a cell that starts like a formula is prefixed with '."""
    if text.startswith(FORMULA_TRIGGERS) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def _cell_text(value: object) -> str:
    """A value as a CSV cell (before neutralizing): JSON's spelling for JSON values."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, datetime):
        return format_timestamp(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    # Spaced like PostgreSQL's own text for JSON, so both databases give the same cells.
    return json.dumps(value, ensure_ascii=False)


def _json_value(value: object) -> object:
    if isinstance(value, datetime):
        return format_timestamp(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


# --- The selection ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CallRecordFilters:
    """Which call records: received in [since, until), of these vendors, states and outcomes."""

    since: datetime | None = None
    until: datetime | None = None
    vendor_ids: tuple[int, ...] = ()
    states: tuple[str, ...] = ()
    outcomes: tuple[str, ...] = ()
    search: str = ""

    def as_json(self) -> dict:
        """For the audit record and the background job: only what is set."""
        data: dict = {}
        if self.since:
            data["since"] = self.since.astimezone(UTC).isoformat()
        if self.until:
            data["until"] = self.until.astimezone(UTC).isoformat()
        if self.vendor_ids:
            data["vendor"] = list(self.vendor_ids)
        if self.states:
            data["state"] = list(self.states)
        if self.outcomes:
            data["outcome"] = list(self.outcomes)
        if self.search:
            data["q"] = self.search
        return data

    @classmethod
    def from_json(cls, data: dict) -> CallRecordFilters:
        def moment(key: str) -> datetime | None:
            return datetime.fromisoformat(data[key]) if data.get(key) else None

        return cls(
            since=moment("since"),
            until=moment("until"),
            vendor_ids=tuple(data.get("vendor", ())),
            states=tuple(data.get("state", ())),
            outcomes=tuple(data.get("outcome", ())),
            search=data.get("q", ""),
        )


def _is_bare_date(value: object) -> bool:
    if isinstance(value, datetime):
        return False
    if isinstance(value, date):
        return True
    try:
        date.fromisoformat(str(value).strip())
    except ValueError:
        return False
    return True


class _MomentField(forms.DateTimeField):
    """ISO-8601 date or date-time, UTC unless the value says otherwise.

    Only ISO-8601: Django's other input formats (09/30/2025) would be read as the start of a
    day where the same date in ISO means the whole of it as the end of a period.
    """

    default_error_messages = {
        "invalid": "Enter an ISO-8601 date or date-time, like 2025-09-30 or 2025-09-30T14:00:00Z.",
        "out_of_range": (
            "This date is out of range; use one between 0001-01-01 and 9999-12-30, UTC."
        ),
    }

    def __init__(self, *, end_of_day: bool = False, **kwargs):
        self.end_of_day = end_of_day
        super().__init__(**kwargs)

    def to_python(self, value):
        if isinstance(value, str) and value.strip():
            try:
                iso = parse_datetime(value.strip())
            except ValueError:  # shaped like ISO-8601, but no such day or hour
                iso = None
            if iso is None:
                raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        moment = super().to_python(value)
        if moment is None:
            return None
        try:
            # A bare date as the end of a period means "up to the end of that day".
            if self.end_of_day and _is_bare_date(value):
                moment += timedelta(days=1)
            # The database and the audit row hold UTC: the moment must exist there too.
            moment.astimezone(UTC)
        except OverflowError:
            raise forms.ValidationError(
                self.error_messages["out_of_range"], code="out_of_range"
            ) from None
        return moment


class CallRecordFilterForm(forms.Form):
    """The filters every export path accepts. Lists may repeat the parameter or use commas."""

    since = _MomentField(
        required=False, help_text="From this moment (inclusive). A date means its midnight, UTC."
    )
    until = _MomentField(
        required=False,
        end_of_day=True,
        help_text="Before this moment (exclusive). A date means the end of that day, UTC.",
    )
    vendor = forms.ModelMultipleChoiceField(
        queryset=Vendor.objects.order_by("name"), required=False, help_text="Vendor ids."
    )
    state = forms.MultipleChoiceField(choices=STATE_CHOICES, required=False)
    outcome = forms.MultipleChoiceField(choices=CallRecord.Outcome.choices, required=False)
    q = forms.CharField(
        required=False,
        max_length=200,
        label="Search",
        help_text="Phone number, request id, vendor name, or text in the tracking data.",
    )

    LIST_FIELDS = ("vendor", "state", "outcome")

    def __init__(self, data=None, *args, **kwargs):
        super().__init__(_split_lists(data) if data is not None else None, *args, **kwargs)

    def clean(self):
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since >= until:
            self.add_error("until", "The end of the period must come after its start.")
        return cleaned

    def filters(self) -> CallRecordFilters:
        data = self.cleaned_data
        return CallRecordFilters(
            since=data.get("since"),
            until=data.get("until"),
            vendor_ids=tuple(sorted(vendor.pk for vendor in data.get("vendor") or ())),
            states=tuple(sorted(data.get("state") or ())),
            outcomes=tuple(sorted(data.get("outcome") or ())),
            search=(data.get("q") or "").strip(),
        )


def _split_lists(data) -> QueryDict:
    """`state=AZ,ca&state=TX` and `state=AZ&state=CA&state=TX` mean the same."""
    result = QueryDict(mutable=True)
    for key in data:
        values = data.getlist(key) if hasattr(data, "getlist") else _as_list(data[key])
        if key in CallRecordFilterForm.LIST_FIELDS:
            values = [part.strip() for value in values for part in str(value).split(",")]
            values = [value for value in values if value]
            if key == "state":
                values = [value.upper() for value in values]
            elif key == "outcome":
                values = [value.lower().replace(" ", "_") for value in values]
        result.setlist(key, values)
    return result


def _as_list(value) -> list:
    return list(value) if isinstance(value, list | tuple) else [value]


def call_record_filters_parse(*, data) -> CallRecordFilters:
    """Filters from query parameters (or a dict); `InvalidFilters` lists what is wrong."""
    form = CallRecordFilterForm(data)
    if not form.is_valid():
        raise InvalidFilters(
            {name: [str(message) for message in errors] for name, errors in form.errors.items()}
        )
    return form.filters()


def call_record_select(*, filters: CallRecordFilters) -> QuerySet[CallRecord]:
    """The call records the filters select, oldest first."""
    records = CallRecord.objects.all()
    if filters.since:
        records = records.filter(received_at__gte=filters.since)
    if filters.until:
        records = records.filter(received_at__lt=filters.until)
    if filters.vendor_ids:
        records = records.filter(vendor_id__in=filters.vendor_ids)
    if filters.states:
        records = records.filter(state__in=filters.states)
    if filters.outcomes:
        records = records.filter(outcome__in=filters.outcomes)
    if filters.search:
        records = records.filter(_search_q(filters.search))
    return records.order_by("received_at", "id")


def _search_q(term: str) -> Q:
    query = (
        Q(vendor__name__icontains=term)
        | Q(tracking__icontains=term)
        | Q(rejected_reason__icontains=term)
    )
    digits = re.sub(r"\D", "", term)
    if len(digits) >= 3 and re.fullmatch(r"[\d\s()+.-]+", term):
        query |= Q(phone_number__contains=digits) | Q(transfer_target__contains=digits)
    with contextlib.suppress(ValueError):
        query |= Q(request_id=uuid.UUID(term))
    return query


def call_record_tracking_keys(*, records: QuerySet[CallRecord]) -> list[str]:
    """The union of tracking keys in the selection, sorted; collected by the database."""
    try:
        sql, params = records.order_by().values("tracking").query.sql_with_params()
    except EmptyResultSet:
        return []
    if connection.vendor == "postgresql":
        query = (
            "SELECT DISTINCT jsonb_object_keys(selection.tracking) FROM (" + sql + ") selection"
            " WHERE jsonb_typeof(selection.tracking) = 'object'"
        )
    elif connection.vendor == "sqlite":
        query = (
            "SELECT DISTINCT item.key FROM (" + sql + ") selection,"
            " json_each(selection.tracking) item WHERE json_type(selection.tracking) = 'object'"
        )
    else:  # another database: correct, just slower
        keys: set[str] = set()
        for tracking in records.values_list("tracking", flat=True).iterator(FETCH_CHUNK_ROWS):
            if isinstance(tracking, dict):
                keys.update(tracking)
        return sorted(keys)
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return sorted(str(row[0]) for row in cursor.fetchall())


# --- Rows ------------------------------------------------------------------------------------


@dataclass
class ExportSheet:
    """The selection, its columns, and its rows as plain values, read in chunks."""

    records: QuerySet[CallRecord]
    tracking_keys: list[str]
    headers: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.headers = RECORD_HEADERS + [tracking_column_name(key) for key in self.tracking_keys]

    def raw_rows(self, *, limit: int | None = None) -> Iterator[tuple]:
        """(record values..., tracking dict) per record."""
        records = self.records.values_list(*_RECORD_PATHS, "tracking")
        if limit is not None:
            records = records[:limit]
        return records.iterator(chunk_size=FETCH_CHUNK_ROWS)

    def cell_rows(self, *, limit: int | None = None) -> Iterator[list]:
        """Rows as cell values: the record's own, then one per tracking key (None if absent)."""
        keys = self.tracking_keys
        for raw in self.raw_rows(limit=limit):
            tracking = raw[-1] if isinstance(raw[-1], dict) else {}
            yield [*raw[:-1], *(tracking.get(key) for key in keys)]


def tracking_column_name(key: str) -> str:
    """A tracking key's column: the key itself, or `tracking.<key>` when the key is empty, is a
    record column's name, starts with `tracking.`, or starts like a formula.

    So every column has its own name (the prefixed names all start with `tracking.`, which no
    other name does), and no header ever needs neutralizing, which could make two alike.
    """
    if (
        not key
        or key in _RECORD_HEADER_SET
        or key.startswith(TRACKING_PREFIX)
        or cell_neutralize(key) != key
    ):
        return TRACKING_PREFIX + key
    return key


_RECORD_HEADER_SET = frozenset(RECORD_HEADERS)


def export_sheet_for(*, filters: CallRecordFilters) -> ExportSheet:
    records = call_record_select(filters=filters)
    return ExportSheet(records=records, tracking_keys=call_record_tracking_keys(records=records))


def call_record_as_json(values: Iterable, tracking: object) -> dict:
    """One record as the API and JSON Lines give it: tracking verbatim, nested."""
    data = {
        header: _json_value(value) for header, value in zip(RECORD_HEADERS, values, strict=True)
    }
    data["tracking"] = tracking
    return data


Progress = Callable[[int], None]

# PostgreSQL takes at most 1,664 columns in a SELECT: a sheet wider than this (vendors sending
# ever new tracking keys) is written by the Python writer, which has no such limit.
COPY_MAX_COLUMNS = 1600


def csv_chunks(
    sheet: ExportSheet, *, bom: bool = False, progress: Progress | None = None
) -> Iterator[str | bytes]:
    """The CSV file, a few thousand rows at a time."""
    buffer = io.StringIO()
    # "\n" like PostgreSQL's COPY, so both databases give the same bytes.
    writer = csv.writer(buffer, lineterminator="\n")
    if bom:  # lets Excel read UTF-8 instead of guessing the locale's code page
        buffer.write("\ufeff")
    writer.writerow([cell_neutralize(header) for header in sheet.headers])
    if connection.vendor == "postgresql" and len(sheet.headers) <= COPY_MAX_COLUMNS:
        yield _drain(buffer)
        yield from _postgres_csv_rows(sheet, progress=progress)
        return
    written = 0
    for row in sheet.cell_rows():
        writer.writerow([cell_neutralize(_cell_text(value)) for value in row])
        written += 1
        if written % FETCH_CHUNK_ROWS == 0:
            yield _drain(buffer)
            if progress:
                progress(written)
    yield _drain(buffer)
    if progress:
        progress(written)


class _Neutralized(Func):
    """`cell_neutralize` in SQL, for a text expression; empty text as NULL, as in the CSV.

    Built from FORMULA_TRIGGERS and PLAIN_NUMBER_PATTERN, so the two writers cannot drift.
    """

    output_field = TextField()

    def as_sql(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        value = f"NULLIF({sql}, '')"
        triggers = ", ".join(f"chr({ord(character)})" for character in FORMULA_TRIGGERS)
        plain_number = f"^({PLAIN_NUMBER_PATTERN})$"  # fullmatch; [0-9] is ASCII in both
        template = (
            f"CASE WHEN left({value}, 1) IN ({triggers}) AND {value} !~ %s"
            f" THEN chr(39) || {value} ELSE {value} END"
        )
        return template, (*params, *params, plain_number, *params, *params)


class _UtcTimestamp(Func):
    """`format_timestamp` in SQL."""

    template = "to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
    output_field = TextField()


class _TrackingText(Func):
    """`tracking ->> key` with the key as one text key, as `dict.get` reads it in Python.

    Django's key transforms split a key on `__` into a path and read an integer-like key
    ("0", "1_000", " 7") as an array index; vendor keys are neither.
    """

    output_field = TextField()

    def __init__(self, key: str):
        super().__init__(F("tracking"))
        self.key = key

    def as_sql(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        return f"({sql} ->> %s::text)", (*params, self.key)


def _postgres_csv_rows(sheet: ExportSheet, *, progress: Progress | None) -> Iterator[bytes]:
    """The rows by PostgreSQL's own COPY ... TO STDOUT, formatted and quoted by the server.

    The server sends one row per message; they go on in blocks of about 64 KiB, so memory stays
    flat. Several times the Python writer's speed on a million rows, with the same cells: the
    suite runs on both databases and expects the same files.
    """
    columns: list[Func] = []
    for _, path in RECORD_COLUMNS:
        model_field = CallRecord._meta.get_field(path.split("__")[0])
        if not isinstance(model_field, Field):  # every column is a field of the table's own
            raise TypeError(f"{path} is not a column of call records")
        field_type = model_field.get_internal_type()
        if field_type == "DateTimeField":
            columns.append(_UtcTimestamp(path))
        elif field_type in ("UUIDField", "PositiveIntegerField"):
            columns.append(Cast(path, TextField()))
        else:
            columns.append(_Neutralized(path))
    columns += [_Neutralized(_TrackingText(key)) for key in sheet.tracking_keys]
    names = [f"export_column_{index}" for index in range(len(columns))]
    selection = sheet.records.annotate(**dict(zip(names, columns, strict=True))).values_list(*names)
    try:
        sql, params = selection.query.sql_with_params()
    except EmptyResultSet:
        return
    block = bytearray()
    written = 0
    with connection.cursor() as cursor:
        raw_cursor = cursor.cursor  # psycopg's own, for COPY
        with raw_cursor.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)", params) as copy:
            for row in copy:
                block += row
                written += 1
                if len(block) >= 65_536:
                    yield bytes(block)
                    block.clear()
                    if progress:
                        progress(written)
    if block:
        yield bytes(block)
    if progress:
        progress(written)


def jsonl_chunks(sheet: ExportSheet, *, progress: Progress | None = None) -> Iterator[str]:
    """JSON Lines, one record per line, a few thousand lines at a time."""
    lines: list[str] = []
    written = 0
    for raw in sheet.raw_rows():
        record = call_record_as_json(raw[:-1], raw[-1])
        lines.append(json.dumps(record, ensure_ascii=False, separators=(",", ":")))
        written += 1
        if written % FETCH_CHUNK_ROWS == 0:
            yield "\n".join(lines) + "\n"
            lines.clear()
            if progress:
                progress(written)
    if lines:
        yield "\n".join(lines) + "\n"
    if progress:
        progress(written)


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate(0)
    return text


def xlsx_write(
    sheet: ExportSheet, path: Path | IO[Any], *, progress: Progress | None = None
) -> int:
    """Write the XLSX file row by row (constant memory); returns the rows written.

    Refuses a selection beyond Excel's row or column limit rather than write a file Excel
    would cut short.
    """
    import xlsxwriter  # only the job and the command need it

    if len(sheet.headers) > EXCEL_MAX_COLUMNS:
        raise ExportTooLarge(
            f"The selection has {len(sheet.headers):,} columns; Excel holds at most "
            f"{EXCEL_MAX_COLUMNS:,}. Narrow the filters or export CSV."
        )
    workbook = xlsxwriter.Workbook(
        str(path) if isinstance(path, Path) else path,
        {
            "constant_memory": True,
            # Vendor strings stay strings: never formulas, links or numbers.
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
        },
    )
    try:
        worksheet = workbook.add_worksheet("Call records")
        moment_format = workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss.000"})
        worksheet.write_row(0, 0, [cell_neutralize(header) for header in sheet.headers])
        worksheet.freeze_panes(1, 0)
        written = 0
        for row_index, row in enumerate(sheet.cell_rows(limit=EXCEL_MAX_DATA_ROWS + 1), 1):
            if row_index > EXCEL_MAX_DATA_ROWS:
                raise ExportTooLarge(excel_limit_message(row_index))
            for column, value in enumerate(row):
                _xlsx_cell(worksheet, row_index, column, value, moment_format)
            written = row_index
            if progress and written % PROGRESS_EVERY_ROWS == 0:
                progress(written)
    finally:
        workbook.close()
    if progress:
        progress(written)
    return written


# Excel holds numbers as doubles: an integer beyond 2**53 would lose digits (an ad id) or not
# convert at all, so it is written as text, every digit kept.
_EXACT_IN_DOUBLE = 2**53


def _xlsx_cell(worksheet, row: int, column: int, value: object, moment_format) -> None:
    if value is None or value == "":
        return  # a blank cell, as in the CSV
    if isinstance(value, bool):
        worksheet.write_boolean(row, column, value)
    elif isinstance(value, float) or (isinstance(value, int) and abs(value) <= _EXACT_IN_DOUBLE):
        worksheet.write_number(row, column, value)
    elif isinstance(value, datetime):
        # Excel has no time zones: the cell holds UTC, as the header's ISO columns do in CSV.
        worksheet.write_datetime(
            row, column, value.astimezone(UTC).replace(tzinfo=None), moment_format
        )
    else:
        worksheet.write_string(row, column, cell_neutralize(_cell_text(value)))


def excel_limit_message(rows: int) -> str:
    return (
        f"The selection holds {rows:,} call records or more; an Excel sheet holds at most "
        f"{EXCEL_MAX_DATA_ROWS:,} below its header. Narrow the period or filters, or export "
        "CSV or JSON Lines, which have no limit."
    )


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
    """The selection to write, and its audit row, running from now."""
    with database_timeouts_lifted():  # reading a whole selection takes longer than a ping
        sheet = export_sheet_for(filters=filters)
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
        chunks=_audited(export, chunks, rows_seen),
        content_type=content_type,
        filename=export_filename(export_format, now=now),
    )


def _audited(
    export: CallExport, chunks: Iterator[str | bytes], rows_seen: list[int]
) -> Iterator[str | bytes]:
    finished = False
    try:
        # On PostgreSQL one read-only transaction lets the server-side cursor hand rows over as
        # they are read; outside one, Django's cursor WITH HOLD first copies the whole result.
        # Not on SQLite, where a transaction would hold the write lock pings need.
        with database_timeouts_lifted():
            if connection.vendor == "postgresql":
                with transaction.atomic():
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
    with database_timeouts_lifted():
        rows = call_record_select(filters=filters).count()
    if rows > EXCEL_MAX_DATA_ROWS:
        raise ExportTooLarge(excel_limit_message(rows))
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
        with database_timeouts_lifted():
            sheet = export_sheet_for(filters=CallRecordFilters.from_json(export.filters))
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
        with database_timeouts_lifted():
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
