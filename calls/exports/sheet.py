"""The sheet: its columns, its rows as plain values, and how a value becomes a cell."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db.models import QuerySet

from calls.exports.forms import CallRecordFilters
from calls.exports.selectors import (
    FETCH_CHUNK_ROWS,
    call_record_select,
    call_record_tracking_keys,
)
from calls.models import CallRecord
from calls.timestamps import format_timestamp

# The record's own columns, in the order analysts read them: header and queryset path.
RECORD_COLUMNS: list[tuple[str, str]] = [
    ("request_id", "request_id"),
    ("received_at", "received_at"),
    ("vendor", "vendor__name"),
    ("phone_number", "phone_number"),
    ("state", "state"),
    ("state_source", "state_source"),
    ("outcome", "outcome"),
    # The contract's reason code of an unavailable answer: no_agent, or the policy that refused.
    ("reason", "reason"),
    ("rejected_reason", "rejected_reason"),
    ("transfer_target", "transfer_target"),
    ("agent", "agent__name"),
    ("agent_count", "agent_count"),
    ("ttl_seconds", "ttl_seconds"),
    ("connected_at", "connected_at"),
    ("ended_at", "ended_at"),
    ("duration_seconds", "duration_seconds"),
    ("call_status", "call_status"),
    ("caller_id", "caller_id"),
    ("caller_id_match", "caller_id_matches"),
    ("repeat_of", "repeat_of__request_id"),
    ("released_by", "reservation__released_by__username"),
    ("release_reason", "reservation__release_reason"),
    # Settlement (calls.settlement): decided when the record's end is known.
    ("billable", "billable"),
    ("not_billable_reason", "not_billable_reason"),
    ("payout", "payout"),
    ("payout_currency", "payout_currency"),
    # A sandbox key's test ping (left out unless the selection asks for sandbox traffic).
    ("sandbox", "sandbox"),
    # Consent evidence the ping carried, well formed (empty: none).
    ("trustedform_cert_url", "trustedform_cert_url"),
    ("jornaya_leadid", "jornaya_leadid"),
]
RECORD_HEADERS = [header for header, _ in RECORD_COLUMNS]
_RECORD_PATHS = [path for _, path in RECORD_COLUMNS]
# A tracking key that cannot be a column name as it is gets this prefix (`tracking_column_name`).
TRACKING_PREFIX = "tracking."

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


def cell_text(value: object) -> str:
    """A value as a CSV cell (before neutralizing): JSON's spelling for JSON values."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, datetime):
        return format_timestamp(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    # Spaced like PostgreSQL's own text for JSON, so both databases give the same cells.
    return json.dumps(value, ensure_ascii=False)


def _json_value(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)  # money as a string: every digit, as the CSV gives it
    if isinstance(value, datetime):
        return format_timestamp(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


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


def export_sheet_for(*, filters: CallRecordFilters, using: str | None = None) -> ExportSheet:
    records = call_record_select(filters=filters, using=using)
    return ExportSheet(records=records, tracking_keys=call_record_tracking_keys(records=records))


def call_record_as_json(values: Iterable, tracking: object) -> dict:
    """One record as the API and JSON Lines give it: tracking verbatim, nested."""
    data = {
        header: _json_value(value) for header, value in zip(RECORD_HEADERS, values, strict=True)
    }
    data["tracking"] = tracking
    return data
