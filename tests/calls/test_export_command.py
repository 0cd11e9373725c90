"""`manage.py export_calls`: the same selection and files, from the command line."""

import csv
import io
import json

import openpyxl
import pytest
from django.core.management import CommandError, call_command

from calls.models import CallExport

NOT_ISO = "Enter an ISO-8601 date or date-time, like 2025-09-30 or 2025-09-30T14:00:00Z."


def _export(*args) -> str:
    out = io.StringIO()
    call_command("export_calls", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_it_writes_csv_to_standard_output(records):
    text = _export("--since", "2025-09-02", "--until", "2025-09-02", "--format", "csv")

    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][-4:] == ["campaign", "note", "utm", "vip"]
    assert [row[0] for row in rows[1:]] == [str(records[2].request_id), str(records[3].request_id)]


def test_it_writes_json_lines_to_a_file_and_filters_by_vendor_name_state_and_outcome(
    records, tmp_path
):
    output = tmp_path / "calls.jsonl"
    _export(
        "--since=2025-09-01", "--until=2025-09-30", "--vendor=acme leads", "--state=ca",
        "--state=AZ", "--outcome=no_agent", "--format=jsonl", f"--output={output}",
    )  # fmt: skip

    lines = [json.loads(line) for line in output.read_text().splitlines()]
    assert [line["request_id"] for line in lines] == [
        str(records[1].request_id),
        str(records[4].request_id),
    ]
    assert lines[0]["tracking"] == {"lead_id": "L-2", "score": 7}


def test_it_writes_xlsx_to_a_file_and_records_the_export(records, tmp_path):
    output = tmp_path / "september.xlsx"
    _export("--since=2025-09-01", "--until=2025-09-30", "--format=xlsx", f"--output={output}")

    sheet = openpyxl.load_workbook(output)["Call records"]
    assert sheet.max_row == 6
    export = CallExport.objects.get()
    assert (export.source, export.format, export.status) == ("command", "xlsx", "done")
    assert (export.row_count, export.rows_written, export.requested_by) == (5, 5, None)
    assert export.filters == {
        "since": "2025-09-01T00:00:00+00:00",
        "until": "2025-10-01T00:00:00+00:00",
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since=yesterday", "--until=2025-09-30"], f"--since: {NOT_ISO}"),
        (["--since=2025-09-01", "--until=09/30/2025"], f"--until: {NOT_ISO}"),
        (
            ["--since=2025-09-30", "--until=2025-09-01"],
            "--until: The end of the period must come after its start.",
        ),
        (
            ["--since=2025-09-01", "--until=9999-12-31"],
            "--until: This date is out of range; use one between 0001-01-01 and 9999-12-30, UTC.",
        ),
        (
            ["--since=2025-09-01", "--until=2025-09-30", "--state=ZZ"],
            "--state: Select a valid choice. ZZ is not one of the available choices.",
        ),
        (
            ["--since=2025-09-01", "--until=2025-09-30", "--vendor=Nobody"],
            "--vendor: no vendor is named 'Nobody'.",
        ),
    ],
)
def test_it_refuses_bad_options_and_records_nothing(records, args, message):
    with pytest.raises(CommandError) as refusal:
        _export(*args, "--format=csv")

    assert str(refusal.value) == message
    assert not CallExport.objects.exists()


def test_it_writes_csv_with_more_tracking_keys_than_a_select_list_holds(records):
    # PostgreSQL takes at most 1,664 columns in one SELECT: the COPY of this sheet failed after
    # the header, leaving a file with no rows.
    wide = {f"k{index:04}": index for index in range(1700)}
    records[0].tracking = wide
    records[0].save(update_fields=["tracking"])

    text = _export(
        "--since=2025-09-01", "--until=2025-09-01", "--outcome=completed", "--format=csv"
    )

    header, row = list(csv.reader(io.StringIO(text)))
    assert row[0] == str(records[0].request_id)
    assert dict(zip(header, row, strict=True))["k1699"] == "1699"
    assert len(header) > 1700
