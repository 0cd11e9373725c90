"""Exports from the call-record admin: what the filters select, tracking keys as columns."""

import csv
import io
import json
from urllib.parse import urlencode

from django.http import StreamingHttpResponse

from calls.exports.forms import CallRecordFilters
from calls.exports.jobs import call_export_stream
from calls.models import CallExport, CallRecord
from tests.factories import CallRecordFactory

EXPORT_URL = "/admin/calls/callrecord/export/"
OUT_OF_RANGE = "This date is out of range; use one between 0001-01-01 and 9999-12-30, UTC."
RECORD_HEADERS = [
    "request_id", "received_at", "vendor", "phone_number", "state", "state_source", "outcome",
    "reason", "rejected_reason", "transfer_target", "agent", "agent_count", "ttl_seconds",
    "connected_at", "ended_at", "duration_seconds", "call_status", "caller_id", "caller_id_match",
    "repeat_of", "released_by", "release_reason", "billable", "not_billable_reason", "payout",
    "payout_currency", "sandbox", "trustedform_cert_url", "jornaya_leadid",
]  # fmt: skip


def _csv_rows(response) -> list[list[str]]:
    text = b"".join(response.streaming_content).decode("utf-8")
    assert text.startswith("\ufeff")  # Excel reads the UTF-8 because of it
    return list(csv.reader(io.StringIO(text[1:])))


def test_it_exports_what_the_filters_select_as_csv_with_tracking_keys_as_columns(
    analyst_client, records, vendors
):
    response = analyst_client.post(
        EXPORT_URL,
        {
            "format": "csv",
            "vendor": vendors["acme"].pk,
            "since": "2025-09-01",
            "until": "2025-09-02",
        },
    )

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="call-records-')
    rows = _csv_rows(response)
    first, second = records[0], records[1]
    assert rows == [
        [*RECORD_HEADERS, "ad_id", "lead_id", "score", "source"],
        [
            str(first.request_id), "2025-09-01T12:00:00.000Z", "Acme Leads", first.phone_number,
            "AZ", "area_code", "completed", "", "", "+18775703926", "Alice Agent", "3", "60",
            "2025-09-01T12:00:20.000Z", "2025-09-01T12:03:20.000Z", "180", "completed",
            "+14805550100", "false", "", "", "", "yes", "", "25.00", "USD", "false", "", "",
            "SUMMER-2025", "L-1", "", "google",
        ],
        [
            str(second.request_id), "2025-09-01T13:00:00.000Z", "Acme Leads", second.phone_number,
            "CA", "area_code", "no_agent", "", "", "", "", "", "", "", "", "",
            "", "", "", "", "", "", "no", "no_agent", "0.00", "", "false", "", "",
            "", "L-2", "7", "",
        ],
    ]  # fmt: skip


def test_it_exports_json_lines_with_the_tracking_data_verbatim(analyst_client, records, vendors):
    response = analyst_client.post(
        EXPORT_URL, {"format": "jsonl", "vendor": vendors["beta"].pk, "outcome": "expired"}
    )

    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-ndjson; charset=utf-8"
    lines = b"".join(response.streaming_content).decode().splitlines()
    expired = records[2]
    assert [json.loads(line) for line in lines] == [
        {
            "request_id": str(expired.request_id),
            "received_at": "2025-09-02T12:00:00.000Z",
            "vendor": "Beta Media",
            "phone_number": expired.phone_number,
            "state": "TX",
            "state_source": "area_code",
            "outcome": "expired",
            "reason": "",
            "rejected_reason": "",
            "transfer_target": "+18775703927",
            "agent": None,
            "agent_count": 1,
            "ttl_seconds": 60,
            "connected_at": None,
            "ended_at": None,
            "duration_seconds": None,
            "call_status": "",
            "caller_id": "",
            "caller_id_match": None,
            "repeat_of": None,
            "released_by": None,
            "release_reason": None,
            "billable": "pending",
            "not_billable_reason": "",
            "payout": None,
            "payout_currency": "",
            "sandbox": False,
            "trustedform_cert_url": "",
            "jornaya_leadid": "",
            "tracking": {"campaign": "fall", "utm": {"medium": "cpc"}, "vip": True},
        }
    ]


def test_it_writes_nested_and_missing_tracking_values_in_json_spelling(analyst_client, records):
    response = analyst_client.post(
        EXPORT_URL, {"format": "csv", "state": "TX", "since": "2025-09-02"}
    )

    rows = _csv_rows(response)
    assert rows[0][len(RECORD_HEADERS) :] == ["campaign", "note", "utm", "vip"]
    assert [row[len(RECORD_HEADERS) :] for row in rows[1:]] == [
        ["fall", "", '{"medium": "cpc"}', "true"],
        ["fall", "", "", ""],
    ]


def test_it_searches_the_tracking_data(analyst_client, records):
    response = analyst_client.post(EXPORT_URL, {"format": "csv", "q": "L-5"})

    rows = _csv_rows(response)
    assert [row[0] for row in rows[1:]] == [str(records[4].request_id)]


def test_it_streams_the_csv_rather_than_building_it(analyst_client, vendors, base_time):
    CallRecord.objects.bulk_create(
        CallRecord(
            vendor=vendors["acme"], phone_number=f"+1480555{index:04d}", state="AZ",
            state_source="area_code", outcome="no_agent", received_at=base_time,
            tracking={"lead_id": f"L-{index}"},
        )
        for index in range(4500)
    )  # fmt: skip

    response = analyst_client.post(EXPORT_URL, {"format": "csv"})

    assert isinstance(response, StreamingHttpResponse)
    assert response.streaming
    chunks = list(response.streaming_content)
    body = b"".join(chunks)
    # Sent as it is read, in blocks of a few thousand rows at most, never as one piece.
    assert len(chunks) >= 3
    assert max(len(chunk) for chunk in chunks) < len(body) / 2
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert len(rows) == 4501
    assert rows[-1][-1] == "L-4499"


def test_an_export_leaves_an_audit_record(analyst_client, analyst, records, vendors):
    response = analyst_client.post(
        EXPORT_URL, {"format": "csv", "vendor": vendors["acme"].pk, "state": "az,ca"}
    )
    b"".join(response.streaming_content)

    export = CallExport.objects.get()
    assert export.requested_by == analyst
    assert export.source == "admin"
    assert export.format == "csv"
    assert export.filters == {"vendor": [vendors["acme"].pk], "state": ["AZ", "CA"]}
    assert export.status == "done"
    assert (export.row_count, export.rows_written) == (3, 3)
    assert export.finished_at is not None


def test_a_viewer_without_the_export_permission_is_refused(call_viewer_client, records):
    assert call_viewer_client.get(EXPORT_URL).status_code == 403
    assert call_viewer_client.post(EXPORT_URL, {"format": "csv"}).status_code == 403
    assert call_viewer_client.post(EXPORT_URL, {"format": "xlsx"}).status_code == 403
    assert not CallExport.objects.exists()


def test_the_change_list_offers_export_to_analysts_only(
    analyst_client, client, call_viewer, records
):
    page = analyst_client.get("/admin/calls/callrecord/?outcome__exact=no_agent")
    assert page.status_code == 200
    assert b'href="/admin/calls/callrecord/export/?outcome__exact=no_agent"' in page.content

    client.force_login(call_viewer)
    page = client.get("/admin/calls/callrecord/")
    assert page.status_code == 200
    assert b"/admin/calls/callrecord/export/" not in page.content


def test_the_export_form_takes_the_change_list_filters(analyst_client, records, vendors):
    query = (
        f"?vendor__id__exact={vendors['acme'].pk}&outcome__exact=no_agent"
        "&received_at__year=2025&received_at__month=9&received_at__day=1&o=2&unknown_filter=1"
    )
    page = analyst_client.get(EXPORT_URL + query)

    assert page.status_code == 200
    form = page.context["form"]
    assert form.is_valid(), form.errors
    assert form.cleaned_data["since"].isoformat() == "2025-09-01T00:00:00+00:00"
    assert form.cleaned_data["until"].isoformat() == "2025-09-02T00:00:00+00:00"
    assert [vendor.pk for vendor in form.cleaned_data["vendor"]] == [vendors["acme"].pk]
    assert form.cleaned_data["outcome"] == ["no_agent"]
    assert page.context["matching"] == 1
    assert page.context["ignored"] == ["unknown_filter"]
    assert b"1</strong> call record match" in page.content


def test_the_export_form_says_when_it_selects_what_the_list_shows(analyst_client, records):
    page = analyst_client.get(EXPORT_URL + "?outcome__exact=no_agent&q=L-2")

    assert (page.context["listed"], page.context["matching"]) == (1, 1)
    assert b"its filters do not all translate" not in page.content


def test_the_list_and_the_export_search_by_one_rule(analyst_client, records):
    # Exact request id, phone or lead_id: a part of a lead_id or a word of the tracking data
    # selects nothing in either (they once disagreed: 0 listed, 2 exported).
    CallRecordFactory(vendor=records[0].vendor, tracking={"lead_id": "FB-9", "source": "facebook"})
    for term, expected in [("L-", 0), ("facebook", 0), ("L-2", 1), (records[0].phone_number, 1)]:
        page = analyst_client.get(EXPORT_URL + "?" + urlencode({"q": term}))
        assert (page.context["listed"], page.context["matching"]) == (expected, expected), term
        assert b"The list you came from shows" not in page.content


def test_it_answers_bad_filters_with_the_form_and_exports_nothing(analyst_client, records):
    page = analyst_client.post(
        EXPORT_URL, {"format": "csv", "since": "2025-09-03", "until": "2025-09-01"}
    )

    assert page.status_code == 200
    assert page.context["form"].errors == {
        "until": ["The end of the period must come after its start."]
    }
    assert not CallExport.objects.exists()


def test_a_period_end_beyond_the_calendar_is_a_form_error_not_a_crash(analyst_client, records):
    # A bare date as the end means the next midnight: after 9999-12-31 there is none.
    page = analyst_client.get(EXPORT_URL + "?received_at__date__lte=9999-12-31")

    assert page.status_code == 200
    assert page.context["form"].errors == {"until": [OUT_OF_RANGE]}
    assert page.context["matching"] is None

    page = analyst_client.post(EXPORT_URL, {"format": "csv", "until": "9999-12-31"})

    assert page.status_code == 200
    assert page.context["form"].errors == {"until": [OUT_OF_RANGE]}
    assert not CallExport.objects.exists()


def test_a_period_start_before_the_calendar_in_utc_is_a_form_error_not_a_crash(
    analyst_client, records
):
    # Midnight of year 1 at +05:00 is still year 0 in UTC, which has no datetime.
    page = analyst_client.post(
        EXPORT_URL, {"format": "jsonl", "since": "0001-01-01T00:00:00+05:00"}
    )

    assert page.status_code == 200
    assert page.context["form"].errors == {"since": [OUT_OF_RANGE]}
    assert not CallExport.objects.exists()


def test_it_exports_a_selection_with_no_tracking_data(analyst_client, vendors, make_record):
    make_record(vendors["acme"], tracking={})

    rows = _csv_rows(analyst_client.post(EXPORT_URL, {"format": "csv"}))

    assert rows[0] == RECORD_HEADERS
    assert len(rows) == 2


def test_a_tracking_key_named_like_a_record_column_gets_a_prefix(
    analyst_client, vendors, make_record
):
    make_record(vendors["acme"], state="AZ", tracking={"state": "Arizona!"})

    rows = _csv_rows(analyst_client.post(EXPORT_URL, {"format": "csv"}))

    assert rows[0][-1] == "tracking.state"
    assert rows[1][4] == "AZ"
    assert rows[1][-1] == "Arizona!"


def test_a_download_stopped_half_way_is_audited_as_failed(analyst, vendors, base_time):
    CallRecord.objects.bulk_create(
        CallRecord(
            vendor=vendors["acme"], phone_number=f"+1480555{index:04d}", state="AZ",
            state_source="area_code", outcome="no_agent", received_at=base_time,
        )
        for index in range(4500)
    )  # fmt: skip
    stream = call_export_stream(
        user=analyst, filters=CallRecordFilters(), export_format="csv", source="admin"
    )

    next(stream.chunks)
    stream.chunks.close()  # what the server does when the browser goes away

    export = CallExport.objects.get()
    assert export.status == "failed"
    assert export.row_count == 4500
    assert export.rows_written < 4500
    assert export.error == f"Stopped after {export.rows_written:,} rows."


def test_a_tracking_key_is_read_as_one_key_whatever_it_looks_like(
    analyst_client, vendors, make_record
):
    # Not a path split on "__", not an array index: the key as the vendor sent it.
    tracking = {"utm__source": "google", "0": "zero", "1_000": "thousand", " 7": "seven"}
    tracking |= {"-1": "minus one", "it's": "quoted", "a->>b": "arrow", "50%": "half"}
    tracking |= {"x__y": "=SUM(A1)"}
    make_record(vendors["acme"], tracking=tracking)

    rows = _csv_rows(analyst_client.post(EXPORT_URL, {"format": "csv"}))

    keys = sorted(tracking)
    assert rows[0][len(RECORD_HEADERS) :] == keys
    cells = {key: tracking[key] for key in keys} | {"x__y": "'=SUM(A1)"}  # still neutralized
    assert rows[1][len(RECORD_HEADERS) :] == list(cells.values())
