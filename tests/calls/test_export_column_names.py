"""Every column of an export has its own name, by one rule (`tracking_column_name`), whichever
writer makes the file: a tracking key `outcome` and a tracking key `tracking.outcome` used to
share the column `tracking.outcome`."""

import csv
import io

import openpyxl
import pytest
from django.core.management import call_command

from calls.exports.forms import CallRecordFilters
from calls.exports.jobs import call_export_run, call_export_start
from calls.exports.sheet import RECORD_HEADERS

EXPORT_URL = "/admin/calls/callrecord/export/"
API_URL = "/api/v1/call-records"
PERIOD = ("--since=2025-09-01", "--until=2025-09-01")
TRACKING = {
    "outcome": "vendor's outcome",
    "tracking.outcome": "dotted key",
    "lead_id": "L-1",
    "=cmd": "formula-like key",
    "'=cmd": "quoted key",
    "": "empty key",
}
# The tracking columns, in the sorted order of their keys, each with its own value.
EXPECTED = {
    "tracking.": "empty key",
    "'=cmd": "quoted key",
    "tracking.=cmd": "formula-like key",
    "lead_id": "L-1",
    "tracking.outcome": "vendor's outcome",
    "tracking.tracking.outcome": "dotted key",
}


@pytest.fixture
def clashing(vendors, make_record):
    return make_record(vendors["acme"], outcome="no_agent", tracking=TRACKING)


def _assert_columns(header: list, row: list) -> None:
    assert len(set(header)) == len(header), header
    assert header[: len(RECORD_HEADERS)] == RECORD_HEADERS
    assert header[len(RECORD_HEADERS) :] == list(EXPECTED)
    cells = dict(zip(header, row, strict=True))
    assert cells["outcome"] == "no_agent"  # the record's own column keeps its name
    assert {name: cells[name] for name in EXPECTED} == EXPECTED


def _csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))


def test_each_column_has_its_own_name_in_the_admins_csv(analyst_client, clashing):
    response = analyst_client.post(EXPORT_URL, {"format": "csv"})

    header, row = _csv_rows(b"".join(response.streaming_content).decode())
    _assert_columns(header, row)


def test_each_column_has_its_own_name_in_the_apis_csv(api, analyst_token, clashing):
    api.credentials(HTTP_AUTHORIZATION=f"Token {analyst_token}")
    response = api.get(API_URL, {"format": "csv"})

    header, row = _csv_rows(b"".join(response.streaming_content).decode())
    _assert_columns(header, row)


@pytest.mark.parametrize("with_copy", [True, False], ids=["copy-when-postgres", "python"])
def test_each_column_has_its_own_name_from_the_command(clashing, with_copy, monkeypatch):
    if not with_copy:  # PostgreSQL's COPY is for sheets up to COPY_MAX_COLUMNS wide
        monkeypatch.setattr("calls.exports.writers.COPY_MAX_COLUMNS", 0)
    out = io.StringIO()
    call_command("export_calls", *PERIOD, "--format=csv", stdout=out, stderr=io.StringIO())

    header, row = _csv_rows(out.getvalue())
    _assert_columns(header, row)


def _xlsx_rows(path) -> tuple[list, list]:
    sheet = openpyxl.load_workbook(path)["Call records"]
    header = [cell.value for cell in sheet[1]]
    row = [cell.value or "" for cell in sheet[2]]
    return header, row


def test_each_column_has_its_own_name_in_the_commands_xlsx(clashing, tmp_path):
    output = tmp_path / "calls.xlsx"
    call_command(
        "export_calls", *PERIOD, "--format=xlsx", f"--output={output}", stderr=io.StringIO()
    )

    header, row = _xlsx_rows(output)
    _assert_columns(header, [str(value) for value in row])


@pytest.mark.django_db
def test_each_column_has_its_own_name_in_the_xlsx_job(analyst, clashing, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    export = call_export_start(
        user=analyst, filters=CallRecordFilters(), source="admin", defer=False
    )

    export = call_export_run(export_id=export.pk)

    header, row = _xlsx_rows(tmp_path / export.file.name)
    _assert_columns(header, [str(value) for value in row])


SETTLEMENT_COLUMNS = [
    "call_status", "caller_id", "caller_id_match", "repeat_of", "released_by", "release_reason",
    "billable", "not_billable_reason", "payout", "payout_currency",
]  # fmt: skip


@pytest.fixture
def settled(vendors, make_record, make_staff):
    from decimal import Decimal

    from tests.factories import ReservationFactory

    staff = make_staff("olivia.ops", "Operations")
    released = ReservationFactory(
        vendor=vendors["acme"], status="released", released_by=staff, release_reason="No answer"
    )
    first = make_record(
        vendors["acme"], outcome="released", reservation=released, billable="no",
        not_billable_reason="no_call", payout=Decimal("0"),
    )  # fmt: skip
    make_record(vendors["acme"], minutes=1, outcome="repeat", repeat_of=first,
                reservation=released, billable="no", not_billable_reason="repeat")  # fmt: skip
    make_record(vendors["acme"], minutes=2, outcome="completed", call_status="completed",
                caller_id="+14801234567", caller_id_matches=True, duration_seconds=95,
                billable="yes", payout=Decimal("25.00"), payout_currency="USD")  # fmt: skip
    return first


@pytest.mark.parametrize("with_copy", [True, False], ids=["copy-when-postgres", "python"])
def test_the_call_and_settlement_columns_are_in_every_export(settled, with_copy, monkeypatch):
    if not with_copy:
        monkeypatch.setattr("calls.exports.writers.COPY_MAX_COLUMNS", 0)
    out = io.StringIO()
    call_command("export_calls", *PERIOD, "--format=csv", stdout=out, stderr=io.StringIO())

    header, *rows = _csv_rows(out.getvalue())
    start = header.index("call_status")
    assert header[start : start + len(SETTLEMENT_COLUMNS)] == SETTLEMENT_COLUMNS
    cells = [row[start : start + len(SETTLEMENT_COLUMNS)] for row in rows]
    assert cells == [
        ["", "", "", "", "olivia.ops", "No answer", "no", "no_call", "0.00", ""],
        ["", "", "", str(settled.request_id), "olivia.ops", "No answer", "no", "repeat", "", ""],
        ["completed", "+14801234567", "true", "", "", "", "yes", "", "25.00", "USD"],
    ]
