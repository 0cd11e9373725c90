"""GET /api/v1/call-records: token-authenticated reporting for analysts and BI tools."""

import base64
import csv
import io
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.http import StreamingHttpResponse
from rest_framework.authtoken.models import Token

from calls.models import CallExport

URL = "/api/v1/call-records"
NOT_ISO = "Enter an ISO-8601 date or date-time, like 2025-09-30 or 2025-09-30T14:00:00Z."
INVALID_CURSOR = (
    "This cursor was not issued for this listing: follow the next and previous links, "
    "or start again without a cursor."
)
OUT_OF_RANGE = "This date is out of range; use one between 0001-01-01 and 9999-12-30, UTC."


@pytest.fixture
def as_analyst(api, analyst_token):
    api.credentials(HTTP_AUTHORIZATION=f"Token {analyst_token}")
    return api


def test_it_refuses_anonymous_users(api, records):
    response = api.get(URL)

    assert response.status_code == 401
    assert response.json() == {"detail": "Authentication credentials were not provided."}
    assert response["WWW-Authenticate"] == "Token"


def test_it_refuses_a_wrong_token(api, records):
    api.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")

    response = api.get(URL)

    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid token."}


def test_it_refuses_a_user_who_may_not_export(api, call_viewer_token, records):
    api.credentials(HTTP_AUTHORIZATION=f"Token {call_viewer_token}")

    response = api.get(URL)

    assert response.status_code == 403
    assert response.json() == {"detail": "You do not have permission to export call records."}
    assert api.get(URL, {"format": "csv"}).status_code == 403
    assert not CallExport.objects.exists()


def test_it_refuses_a_session_login_without_a_token(client, analyst, records):
    client.force_login(analyst)

    assert client.get(URL).status_code == 401


# The columns after the talk time of a record no call reached and nobody settled.
UNSETTLED = {
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
}


def test_it_lists_the_filtered_records_as_json(as_analyst, records, vendors, analyst):
    response = as_analyst.get(URL, {"vendor": vendors["beta"].pk, "outcome": "expired,rejected"})

    assert response.status_code == 200
    expired, rejected = records[2], records[3]
    assert response.json() == {
        "next": None,
        "previous": None,
        "results": [
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
                **UNSETTLED,
                "sandbox": False,
                "trustedform_cert_url": "",
                "jornaya_leadid": "",
                "tracking": {"campaign": "fall", "utm": {"medium": "cpc"}, "vip": True},
            },
            {
                "request_id": str(rejected.request_id),
                "received_at": "2025-09-02T12:05:00.000Z",
                "vendor": "Beta Media",
                "phone_number": rejected.phone_number,
                "state": "TX",
                "state_source": "area_code",
                "outcome": "rejected",
                "reason": "",
                "rejected_reason": "Vendor is not active.",
                "transfer_target": "",
                "agent": None,
                "agent_count": None,
                "ttl_seconds": None,
                "connected_at": None,
                "ended_at": None,
                "duration_seconds": None,
                **UNSETTLED,
                "sandbox": False,
                "trustedform_cert_url": "",
                "jornaya_leadid": "",
                "tracking": {"campaign": "fall", "note": None},
            },
        ],
    }
    export = CallExport.objects.get()
    assert (export.requested_by, export.source, export.format) == (analyst, "api", "json")
    assert export.filters == {"vendor": [vendors["beta"].pk], "outcome": ["expired", "rejected"]}
    assert export.rows_written == 2


def test_it_paginates_with_a_cursor_through_every_record_once(as_analyst, records):
    seen = []
    response = as_analyst.get(URL, {"page_size": 2, "since": "2025-09-01"})
    pages = 1
    while True:
        body = response.json()
        assert response.status_code == 200
        seen += [item["request_id"] for item in body["results"]]
        if body["next"] is None:
            break
        assert "cursor=" in body["next"]
        response = as_analyst.get(body["next"])
        pages += 1

    assert pages == 3
    assert seen == [str(record.request_id) for record in records]
    # A listing is audited once, at its first page.
    assert CallExport.objects.count() == 1


def test_it_streams_csv_with_format_csv(as_analyst, records, analyst):
    response = as_analyst.get(URL, {"format": "csv", "state": "TX"})

    assert response.status_code == 200
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    text = b"".join(response.streaming_content).decode("utf-8")
    assert not text.startswith("\ufeff")  # for BI tools: plain UTF-8
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][-4:] == ["campaign", "note", "utm", "vip"]
    assert [row[0] for row in rows[1:]] == [str(records[2].request_id), str(records[3].request_id)]
    export = CallExport.objects.get()
    assert (export.source, export.format, export.status, export.rows_written) == (
        "api", "csv", "done", 2
    )  # fmt: skip


@pytest.mark.parametrize(
    ("params", "errors"),
    [
        ({"since": "last tuesday"}, {"since": [NOT_ISO]}),
        # A spreadsheet's spelling of a date is not ISO-8601: refused, not read as its midnight.
        ({"until": "09/30/2025"}, {"until": [NOT_ISO]}),
        ({"since": "2025-09-01 10:30", "until": "30.09.2025"}, {"until": [NOT_ISO]}),
        ({"until": "2025-13-01"}, {"until": [NOT_ISO]}),
        (
            {"state": "AZ,XX"},
            {"state": ["Select a valid choice. XX is not one of the available choices."]},
        ),
        (
            {"vendor": "abc"},
            {"vendor": ["“abc” is not a valid value."]},
        ),
        ({"format": "xml"}, {"format": ["Use json or csv."]}),
        (
            {"since": "2025-09-03", "until": "2025-09-01"},
            {"until": ["The end of the period must come after its start."]},
        ),
        ({"until": "9999-12-31"}, {"until": [OUT_OF_RANGE]}),
        ({"since": "0001-01-01T00:00:00+05:00"}, {"since": [OUT_OF_RANGE]}),
        ({"until": "9999-12-31T23:00:00-05:00", "format": "csv"}, {"until": [OUT_OF_RANGE]}),
    ],
)
def test_it_answers_bad_filters_with_400_and_the_reason(as_analyst, records, params, errors):
    response = as_analyst.get(URL, params)

    assert response.status_code == 400
    assert response.json() == errors
    assert not CallExport.objects.exists()


@pytest.mark.parametrize("until", ["2025-09-02", "20250902", "2025-W36-2"])
def test_a_bare_date_as_the_end_means_the_whole_day_in_any_iso_spelling(as_analyst, records, until):
    response = as_analyst.get(URL, {"since": "2025-09-02", "until": until})

    assert response.status_code == 200
    assert [item["request_id"] for item in response.json()["results"]] == [
        str(records[2].request_id),
        str(records[3].request_id),
    ]
    assert CallExport.objects.get().filters["until"] == "2025-09-03T00:00:00+00:00"


def test_a_date_time_as_the_end_means_that_moment(as_analyst, records):
    response = as_analyst.get(URL, {"since": "2025-09-02", "until": "2025-09-02T12:05:00Z"})

    assert [item["request_id"] for item in response.json()["results"]] == [
        str(records[2].request_id)
    ]


def _cursor(**tokens: str) -> str:
    """A cursor as DRF spells one, unsigned: what a client could make up."""
    return base64.b64encode(urlencode(tokens).encode()).decode()


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        _cursor(o="0"),  # the first page, unaudited
        _cursor(p="2000-01-01 00:00:00+00:00"),  # every record from the start, unaudited
        _cursor(p="not a moment"),  # was a 500
        _cursor(o="0") + ":forged-signature",
    ],
)
def test_it_refuses_a_cursor_it_did_not_issue(as_analyst, records, cursor):
    response = as_analyst.get(URL, {"cursor": cursor})

    assert response.status_code == 400
    assert response.json() == {"cursor": [INVALID_CURSOR]}
    assert not CallExport.objects.exists()


def test_an_empty_cursor_starts_a_listing_and_is_audited(as_analyst, records, analyst):
    response = as_analyst.get(URL, {"cursor": "", "page_size": 2})

    assert response.status_code == 200
    body = response.json()
    assert [item["request_id"] for item in body["results"]] == [
        str(records[0].request_id),
        str(records[1].request_id),
    ]
    export = CallExport.objects.get()
    assert (export.requested_by, export.source, export.rows_written) == (analyst, "api", 2)
    assert as_analyst.get(body["next"]).status_code == 200
    assert CallExport.objects.count() == 1


def test_a_cursor_only_continues_the_listing_that_issued_it(
    as_analyst, api, records, vendors, make_staff
):
    first = as_analyst.get(URL, {"vendor": vendors["acme"].pk, "page_size": 1}).json()
    cursor = parse_qs(urlsplit(first["next"]).query)["cursor"][0]

    # The same cursor with other filters would list unaudited what no listing asked for.
    other_filters = as_analyst.get(URL, {"cursor": cursor, "page_size": 1})
    assert other_filters.status_code == 400
    assert other_filters.json() == {"cursor": [INVALID_CURSOR]}

    colleague = make_staff("bea", "Analysts")
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=colleague).key}")
    same_filters = api.get(URL, {"vendor": vendors["acme"].pk, "cursor": cursor, "page_size": 1})
    assert same_filters.status_code == 400
    assert CallExport.objects.count() == 1
