"""Vendor values are data, never formulas: neutralized in CSV and XLSX, verbatim in JSON."""

import csv
import io
import json

import openpyxl
import pytest
from django.core.management import call_command
from django.db import transaction

from calls.exports.forms import CallRecordFilters
from calls.exports.sheet import cell_neutralize, export_sheet_for
from calls.exports.writers import csv_chunks

EXPORT_URL = "/admin/calls/callrecord/export/"
HYPERLINK = '=HYPERLINK("http://x","y")'
# Values whose cells once differed between the writers, or that sit on the rule's edges.
TRICKY = [
    # Arabic-Indic digits (-١٢): text to a spreadsheet, so neutralized.
    ("-\u0661\u0662", "'-\u0661\u0662"),
    ("+\u0661", "'+\u0661"),
    ("=1+1", "'=1+1"),
    ("+1", "+1"),
    ("-12", "-12"),
    ("@x", "'@x"),
    ("\t=", "'\t="),
    ("\r\n=1", "'\r\n=1"),
    # Full-width forms of = + - @.
    ("\uff1d1+1", "'\uff1d1+1"),
    ("\uff0b1", "'\uff0b1"),
    ("\uff0d12", "'\uff0d12"),
    ("\uff20SUM(1)", "'\uff20SUM(1)"),
    ("-12\n", "'-12\n"),
    ("-1.2.3", "'-1.2.3"),
    ("-12e3", "'-12e3"),
    ("-", "'-"),
    ("-.5", "'-.5"),
    (" =1+1", " =1+1"),  # a spreadsheet reads a leading space as text
    ("'=1", "'=1"),
    ("\u0661\u0662", "\u0661\u0662"),
]


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        (HYPERLINK, "'" + HYPERLINK),
        ("+SUM(A1:A9)", "'+SUM(A1:A9)"),
        ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
        ("@SUM(1+1)", "'@SUM(1+1)"),
        ("\t=1+1", "'\t=1+1"),
        ("\r=1+1", "'\r=1+1"),
        ("google", "google"),
        ("a=b", "a=b"),
        ("", ""),
        # Plain numbers are read as the numbers they are: nothing to neutralize.
        ("-12.5", "-12.5"),
        ("+14801234567", "+14801234567"),
        *TRICKY,
    ],
)
def test_it_neutralizes_only_cells_a_spreadsheet_would_read_as_formulas(value, cell):
    assert cell_neutralize(value) == cell


def _csv_from(writer: str, monkeypatch) -> bytes:
    if writer == "python":  # PostgreSQL's COPY is for sheets up to COPY_MAX_COLUMNS wide
        monkeypatch.setattr("calls.exports.writers.COPY_MAX_COLUMNS", 0)
    sheet = export_sheet_for(filters=CallRecordFilters())
    with transaction.atomic():
        chunks = list(csv_chunks(sheet))
    monkeypatch.undo()
    return b"".join(chunk.encode() if isinstance(chunk, str) else chunk for chunk in chunks)


@pytest.mark.postgres
@pytest.mark.django_db
def test_postgresqls_copy_and_the_python_writer_neutralize_by_the_same_rule(
    vendors, make_record, monkeypatch
):
    values = [value for value, _ in TRICKY]
    make_record(vendors["acme"], tracking={f"v{index:02}": v for index, v in enumerate(values)})
    make_record(vendors["acme"], minutes=1, tracking={"v00": -12, "v01": -12.5, "v02": 7})

    by_copy = _csv_from("copy", monkeypatch)
    by_python = _csv_from("python", monkeypatch)

    assert by_copy.decode() == by_python.decode()
    rows = list(csv.reader(io.StringIO(by_copy.decode())))
    assert rows[1][-len(values) :] == [cell for _, cell in TRICKY]
    assert rows[2][-len(values) : -len(values) + 3] == ["-12", "-12.5", "7"]


@pytest.fixture
def dangerous(vendors, make_record):
    return make_record(
        vendors["acme"], tracking={"ad_url": HYPERLINK, "=cmd": "@SUM(1+1)", "lead_id": "L-1"}
    )


def test_a_formula_arrives_neutralized_in_csv(analyst_client, dangerous):
    response = analyst_client.post(EXPORT_URL, {"format": "csv"})

    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert rows[0][-3:] == ["tracking.=cmd", "ad_url", "lead_id"]
    assert rows[1][-3:] == ["'@SUM(1+1)", "'" + HYPERLINK, "L-1"]


def test_a_formula_arrives_neutralized_in_xlsx(analyst, dangerous, tmp_path):
    output = tmp_path / "calls.xlsx"
    call_command(
        "export_calls", "--since=2025-09-01", "--until=2025-09-01", "--format=xlsx",
        f"--output={output}",
    )  # fmt: skip

    sheet = openpyxl.load_workbook(output)["Call records"]
    header = [cell.value for cell in sheet[1]]
    row = [cell for cell in sheet[2]]
    assert header[-3:] == ["tracking.=cmd", "ad_url", "lead_id"]
    assert [cell.value for cell in row[-3:]] == ["'@SUM(1+1)", "'" + HYPERLINK, "L-1"]
    # No formula anywhere (b: the sandbox flag, a boolean cell).
    assert {cell.data_type for cell in row} <= {"s", "n", "d", "b"}


def test_a_formula_arrives_verbatim_in_json_lines(analyst_client, dangerous):
    response = analyst_client.post(EXPORT_URL, {"format": "jsonl"})

    record = json.loads(b"".join(response.streaming_content))
    assert record["tracking"] == {"ad_url": HYPERLINK, "=cmd": "@SUM(1+1)", "lead_id": "L-1"}
