"""The files: CSV (by PostgreSQL's COPY where it can), JSON Lines and XLSX, written as rows come."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from django.core.exceptions import EmptyResultSet
from django.db import connections
from django.db.models import Case, Expression, F, Field, Func, TextField, Value, When
from django.db.models.functions import Cast

from calls.exports.selectors import FETCH_CHUNK_ROWS
from calls.exports.sheet import (
    FORMULA_TRIGGERS,
    PLAIN_NUMBER_PATTERN,
    RECORD_COLUMNS,
    ExportSheet,
    call_record_as_json,
    cell_neutralize,
    cell_text,
)
from calls.models import CallRecord
from calls.timestamps import UtcTimestamp
from config.errors import ApplicationError

# Excel's sheet holds 1,048,576 rows; the header takes one.
EXCEL_MAX_DATA_ROWS = 1_048_576 - 1
EXCEL_MAX_COLUMNS = 16_384
# Rows between two progress reports of a background job.
PROGRESS_EVERY_ROWS = 5_000


class ExportTooLarge(ApplicationError):
    status = 400


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
    on_postgresql = connections[sheet.records.db].vendor == "postgresql"
    if on_postgresql and len(sheet.headers) <= COPY_MAX_COLUMNS:
        yield _drain(buffer)
        yield from _postgres_csv_rows(sheet, progress=progress)
        return
    written = 0
    for row in sheet.cell_rows():
        writer.writerow([cell_neutralize(cell_text(value)) for value in row])
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
    columns: list[Expression] = []
    for _, path in RECORD_COLUMNS:
        field_type = _column_field(path).get_internal_type()
        if field_type == "DateTimeField":
            columns.append(UtcTimestamp(path))
        elif field_type in ("UUIDField", "PositiveIntegerField", "DecimalField", "BooleanField"):
            # Their text is what cell_text gives (a boolean's is true/false), never a formula.
            columns.append(Cast(path, TextField()))
        elif field_type == "BooleanField":
            # JSON's spelling, as cell_text writes it (COPY's own would be t and f).
            columns.append(Case(When(**{path: True}, then=Value("true")), default=Value("false")))
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
    with connections[sheet.records.db].cursor() as cursor:
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


def _column_field(path: str) -> Field:
    """The field a column's path ends on, through the relations it follows: `vendor__name` is
    the vendor's name (a foreign key itself is its related row's text)."""
    model: Any = CallRecord
    model_field: Any = None
    for part in path.split("__"):
        model_field = model._meta.get_field(part)
        if model_field.is_relation:
            model = model_field.related_model
    if not isinstance(model_field, Field):
        raise TypeError(f"{path} is not a column of call records")
    return model_field


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
    elif isinstance(value, Decimal):
        worksheet.write_number(row, column, float(value))  # money: cents are exact in a double
    elif isinstance(value, datetime):
        # Excel has no time zones: the cell holds UTC, as the header's ISO columns do in CSV.
        worksheet.write_datetime(
            row, column, value.astimezone(UTC).replace(tzinfo=None), moment_format
        )
    else:
        worksheet.write_string(row, column, cell_neutralize(cell_text(value)))


def excel_limit_message(rows: int) -> str:
    return (
        f"The selection holds {rows:,} call records or more; an Excel sheet holds at most "
        f"{EXCEL_MAX_DATA_ROWS:,} below its header. Narrow the period or filters, or export "
        "CSV or JSON Lines, which have no limit."
    )


def excel_rows_check(rows: int) -> None:
    """Refuse a selection of `rows` records that an Excel sheet cannot hold."""
    if rows > EXCEL_MAX_DATA_ROWS:
        raise ExportTooLarge(excel_limit_message(rows))
