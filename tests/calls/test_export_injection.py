"""Vendor values are data, never formulas: neutralized in CSV and XLSX, verbatim in JSON."""

import csv
import io
import json

import openpyxl
import pytest
from django.core.management import call_command

from calls.exports import cell_neutralize

EXPORT_URL = "/admin/calls/callrecord/export/"
HYPERLINK = '=HYPERLINK("http://x","y")'


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
    ],
)
def test_it_neutralizes_only_cells_a_spreadsheet_would_read_as_formulas(value, cell):
    assert cell_neutralize(value) == cell


@pytest.fixture
def dangerous(vendors, make_record):
    return make_record(
        vendors["acme"], tracking={"ad_url": HYPERLINK, "=cmd": "@SUM(1+1)", "lead_id": "L-1"}
    )


def test_a_formula_arrives_neutralized_in_csv(analyst_client, dangerous):
    response = analyst_client.post(EXPORT_URL, {"format": "csv"})

    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert rows[0][-3:] == ["'=cmd", "ad_url", "lead_id"]
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
    assert header[-3:] == ["'=cmd", "ad_url", "lead_id"]
    assert [cell.value for cell in row[-3:]] == ["'@SUM(1+1)", "'" + HYPERLINK, "L-1"]
    assert {cell.data_type for cell in row} <= {"s", "n", "d"}  # no formula anywhere


def test_a_formula_arrives_verbatim_in_json_lines(analyst_client, dangerous):
    response = analyst_client.post(EXPORT_URL, {"format": "jsonl"})

    record = json.loads(b"".join(response.streaming_content))
    assert record["tracking"] == {"ad_url": HYPERLINK, "=cmd": "@SUM(1+1)", "lead_id": "L-1"}
