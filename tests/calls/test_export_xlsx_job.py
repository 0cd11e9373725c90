"""XLSX exports: a Celery job on a real worker writes the file, with progress, then offers it."""

import io
import os
import time
from datetime import datetime

import openpyxl
import pytest
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from kombu import Connection

from calls.exports import writers
from calls.exports.forms import CallRecordFilters
from calls.exports.jobs import call_export_run, call_export_start
from calls.exports.sheet import RECORD_HEADERS
from calls.models import CallExport
from config.celery import app as celery_app

EXPORT_URL = "/admin/calls/callrecord/export/"
HYPERLINK = '=HYPERLINK("http://x","y")'


@pytest.fixture
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


@pytest.fixture
def export_worker(media_root):
    """A real worker on the broker from settings, in a thread of this process."""
    try:
        with Connection(settings.CELERY_BROKER_URL, connect_timeout=2) as connection:
            connection.ensure_connection(max_retries=1)
    except Exception as exc:
        if os.environ.get("REQUIRE_POSTGRES"):  # CI: the worker tests are required
            pytest.fail(f"No broker at CELERY_BROKER_URL: {exc}")
        pytest.skip("needs the Redis broker of CELERY_BROKER_URL")
    with start_worker(
        celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=10, loglevel="WARNING"
    ):
        yield


def _wait_for(export: CallExport, seconds: float = 60) -> CallExport:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        export.refresh_from_db()
        if export.status in (CallExport.Status.DONE, CallExport.Status.FAILED):
            return export
        time.sleep(0.1)
    raise AssertionError(f"export still {export.status} after {seconds} s")


@pytest.mark.django_db(transaction=True)
def test_the_xlsx_job_completes_on_a_real_worker_and_offers_the_file(
    export_worker, analyst_client, analyst, records, vendors, make_record
):
    make_record(vendors["acme"], minutes=90, tracking={"lead_id": "L-9", "ad_url": HYPERLINK})

    response = analyst_client.post(
        EXPORT_URL, {"format": "xlsx", "vendor": vendors["acme"].pk, "until": "2025-09-01"}
    )

    export = CallExport.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/admin/calls/callrecord/export/{export.pk}/"
    export = _wait_for(export)
    assert export.status == "done", export.error
    assert (export.requested_by, export.source, export.format) == (analyst, "admin", "xlsx")
    assert (export.row_count, export.rows_written) == (3, 3)

    page = analyst_client.get(f"/admin/calls/callrecord/export/{export.pk}/")
    assert page.status_code == 200
    assert b"Download the XLSX file" in page.content
    assert b'http-equiv="refresh"' not in page.content

    download = analyst_client.get(f"/admin/calls/callrecord/export/{export.pk}/download/")
    assert download.status_code == 200
    assert download["Content-Disposition"] == (
        f'attachment; filename="call-records-{export.pk}.xlsx"'
    )
    workbook = openpyxl.load_workbook(io.BytesIO(b"".join(download.streaming_content)))
    sheet = workbook["Call records"]
    rows = [list(row) for row in sheet.iter_rows(values_only=True)]
    first, second = records[0], records[1]
    assert rows[0][:3] == ["request_id", "received_at", "vendor"]
    assert rows[0][len(RECORD_HEADERS) :] == ["ad_id", "ad_url", "lead_id", "score", "source"]
    assert rows[1] == [
        str(first.request_id), datetime(2025, 9, 1, 12, 0), "Acme Leads", first.phone_number,
        "AZ", "area_code", "completed", None, None, "+18775703926", "Alice Agent", 3, 60,
        datetime(2025, 9, 1, 12, 0, 20), datetime(2025, 9, 1, 12, 3, 20), 180,
        "completed", "+14805550100", False, None, None, None, "yes", None, 25, "USD", False,
        None, None,
        "SUMMER-2025", None, "L-1", None, "google",
    ]  # fmt: skip
    assert rows[2][:2] == [str(second.request_id), datetime(2025, 9, 1, 13, 0)]
    assert rows[2][len(RECORD_HEADERS) :] == [None, None, "L-2", 7, None]
    assert rows[3][len(RECORD_HEADERS) :] == [None, "'" + HYPERLINK, "L-9", None, None]
    # A string, not a formula.
    assert sheet.cell(row=4, column=len(RECORD_HEADERS) + 2).data_type == "s"
    assert len(rows) == 4


@pytest.mark.django_db
def test_the_progress_page_refreshes_while_the_job_waits(analyst_client, records):
    response = analyst_client.post(EXPORT_URL, {"format": "xlsx"})

    export = CallExport.objects.get()
    assert (export.status, export.row_count, export.rows_written) == ("pending", 5, 0)
    page = analyst_client.get(response["Location"])
    assert page.status_code == 200
    assert b'<meta http-equiv="refresh" content="2">' in page.content
    assert b"0 of 5 rows written" in page.content
    download = analyst_client.get(f"/admin/calls/callrecord/export/{export.pk}/download/")
    assert download.status_code == 302


@pytest.mark.django_db
def test_another_analyst_cannot_open_someone_elses_export(
    analyst_client, records, client, make_staff
):
    analyst_client.post(EXPORT_URL, {"format": "xlsx"})
    export = CallExport.objects.get()
    other = make_staff("bea", "Analysts")
    client.force_login(other)

    assert client.get(f"/admin/calls/callrecord/export/{export.pk}/").status_code == 403
    assert client.get(f"/admin/calls/callrecord/export/{export.pk}/download/").status_code == 403


@pytest.mark.django_db
def test_a_selection_beyond_excels_row_limit_is_refused_with_a_clear_message(
    analyst_client, records, monkeypatch
):
    monkeypatch.setattr(writers, "EXCEL_MAX_DATA_ROWS", 4)

    page = analyst_client.post(EXPORT_URL, {"format": "xlsx"})

    assert page.status_code == 200
    assert page.context["form"].non_field_errors() == [
        "The selection holds 5 call records or more; an Excel sheet holds at most 4 below its "
        "header. Narrow the period or filters, or export CSV or JSON Lines, which have no limit."
    ]
    assert not CallExport.objects.exists()


@pytest.mark.django_db
def test_the_job_fails_cleanly_when_the_selection_outgrew_excel_meanwhile(
    analyst, records, vendors, make_record, media_root, monkeypatch
):
    monkeypatch.setattr(writers, "EXCEL_MAX_DATA_ROWS", 5)
    export = call_export_start(
        user=analyst, filters=CallRecordFilters(), source="admin", defer=False
    )
    make_record(vendors["beta"], minutes=5000)

    call_export_run(export_id=export.pk)

    export.refresh_from_db()
    assert export.status == "failed"
    assert export.error.startswith("The selection holds 6 call records or more;")
    assert not export.file
    assert list(media_root.rglob("*.xlsx*")) == []


@pytest.mark.django_db
def test_a_job_delivered_twice_writes_the_file_once(analyst, records, media_root):
    export = call_export_start(
        user=analyst, filters=CallRecordFilters(), source="admin", defer=False
    )

    assert call_export_run(export_id=export.pk).status == "done"
    assert call_export_run(export_id=export.pk) is None

    export.refresh_from_db()
    assert (export.status, export.rows_written) == ("done", 5)
    assert export.file.name == f"exports/call-records-{export.pk}.xlsx"


@pytest.mark.django_db
def test_integers_beyond_a_doubles_precision_keep_every_digit_as_text(
    analyst, vendors, make_record, media_root
):
    huge = int("9" * 400)  # beyond any double: it used to fail the whole job
    make_record(
        vendors["acme"],
        tracking={"ad_id": 23851234567890123, "huge": huge, "safe": 2**53, "neg": -(2**53) - 1},
    )
    export = call_export_start(
        user=analyst, filters=CallRecordFilters(), source="admin", defer=False
    )

    export = call_export_run(export_id=export.pk)

    assert (export.status, export.rows_written, export.error) == ("done", 1, "")
    sheet = openpyxl.load_workbook(media_root / export.file.name)["Call records"]
    header = [cell.value for cell in sheet[1]]
    row = dict(zip(header, sheet[2], strict=True))
    assert (row["ad_id"].value, row["ad_id"].data_type) == ("23851234567890123", "s")
    assert (row["huge"].value, row["huge"].data_type) == ("9" * 400, "s")
    assert (row["neg"].value, row["neg"].data_type) == ("-9007199254740993", "s")
    # Up to 2**53 a double holds the integer exactly: still a number Excel can sum.
    assert (row["safe"].value, row["safe"].data_type) == (2**53, "n")
