"""GET /api/v1/vendor/calls: a vendor reads its own call records with its key, and only those."""

from datetime import UTC, datetime, timedelta

import pytest

from calls.models import CallRecord, InboundCall
from tests.factories import (
    CallRecordFactory,
    ReservationFactory,
    TransferNumberFactory,
    VendorFactory,
)
from vendors.models import VendorKey
from vendors.services import vendor_key_create, vendor_key_revoke

pytestmark = pytest.mark.django_db

URL = "/api/v1/vendor/calls"
T0 = datetime(2025, 9, 19, 17, 0, tzinfo=UTC)
BAD_KEY = "Vendor key was not found or not formatted correctly."


@pytest.fixture
def acme():
    return VendorFactory.with_key(name="Acme Leads")


@pytest.fixture
def rival():
    return VendorFactory.with_key(name="Rival Media")


def calls(api, key, **params):
    return api.get(URL, params, HTTP_AUTHORIZATION=f"Bearer {key}")


def request_ids(answer) -> list[str]:
    return [item["requestId"] for item in answer.json()["data"]["results"]]


def record(vendor, minutes, **values) -> CallRecord:
    return CallRecordFactory.create(
        vendor=vendor, received_at=T0 + timedelta(minutes=minutes), **values
    )


def test_it_lists_the_vendors_own_records_newest_first_and_never_anothers(api, acme, rival):
    (acme_vendor, acme_key), (rival_vendor, rival_key) = acme, rival
    mine = [record(acme_vendor, minute) for minute in (1, 2, 3)]
    theirs = [record(rival_vendor, minute) for minute in (1, 2)]

    answer = calls(api, acme_key)

    assert answer.status_code == 200
    assert request_ids(answer) == [str(r.request_id) for r in reversed(mine)]
    assert request_ids(calls(api, rival_key)) == [str(r.request_id) for r in reversed(theirs)]
    # Not by filter, cursor or page size either.
    for params in ({"outcome": "no_agent"}, {"since": "2025-01-01"}, {"page_size": "500"}):
        assert set(request_ids(calls(api, acme_key, **params))) == {str(r.request_id) for r in mine}


def test_each_record_says_outcome_talk_time_billable_payout_and_caller_id_match(api, acme):
    vendor, key = acme
    done = record(
        vendor,
        0,
        outcome=CallRecord.Outcome.COMPLETED,
        tracking={"lead_id": "L-9"},
        transfer_target="+18775703926",
        connected_at=T0 + timedelta(seconds=20),
        ended_at=T0 + timedelta(seconds=200),
        duration_seconds=180,
        caller_id_matches=False,
    )

    [item] = calls(api, key).json()["data"]["results"]

    assert item["requestId"] == str(done.request_id)
    assert item["receivedAt"] == "2025-09-19T17:00:00.000Z"
    assert item["tracking"] == {"lead_id": "L-9"}
    assert item["outcome"] == "completed"
    assert item["talkTimeSeconds"] == 180
    assert item["callerIdMatch"] is False
    assert item["connectedAt"] == "2025-09-19T17:00:20.000Z"
    assert item["arrival"] is None  # no inbound call recorded for it
    assert {"billable", "billableReason", "payout"} <= set(item)


def test_it_pages_with_cursors(api, acme):
    vendor, key = acme
    made = [record(vendor, minute) for minute in range(5)]
    seen, answer = [], calls(api, key, page_size="2")
    while True:
        body = answer.json()
        assert answer.status_code == 200 and body["status"] == 200
        assert body["data"]["requestId"]
        seen += request_ids(answer)
        if body["data"]["next"] is None:
            break
        answer = api.get(body["data"]["next"], HTTP_AUTHORIZATION=f"Bearer {key}")
    assert seen == [str(r.request_id) for r in reversed(made)]


def test_it_filters_by_time_and_outcome(api, acme):
    vendor, key = acme
    early = record(vendor, 0, outcome=CallRecord.Outcome.EXPIRED)
    middle = record(vendor, 10, outcome=CallRecord.Outcome.COMPLETED)
    late = record(vendor, 20, outcome=CallRecord.Outcome.EXPIRED)

    assert request_ids(calls(api, key, since="2025-09-19T17:05:00Z")) == [
        str(late.request_id),
        str(middle.request_id),
    ]
    assert request_ids(calls(api, key, until="2025-09-19T17:10:00Z")) == [str(early.request_id)]
    assert request_ids(calls(api, key, since="2025-09-19T19:05:00+02:00", until="2025-09-20")) == [
        str(late.request_id),
        str(middle.request_id),
    ]
    assert request_ids(calls(api, key, outcome="expired")) == [
        str(late.request_id),
        str(early.request_id),
    ]
    assert request_ids(calls(api, key, outcome="completed,expired")) == [
        str(late.request_id),
        str(middle.request_id),
        str(early.request_id),
    ]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"since": "yesterday"}, "Invalid since: use an ISO-8601 time or date"),
        ({"until": "2025-13-40"}, "Invalid until: use an ISO-8601 time or date"),
        ({"since": "2025-09-20", "until": "2025-09-19"}, "since must be before until."),
        ({"outcome": "won"}, "Invalid outcome: 'won'. Use one or more of reserved, repeat"),
        ({"outcome": ""}, "Invalid outcome: ''."),
        ({"page_size": "0"}, "Invalid page_size: a whole number from 1 to 500."),
        ({"page_size": "many"}, "Invalid page_size"),
        ({"cursor": "bz1hYmM="}, "Invalid cursor: follow the next and previous links"),
        ({"sinse": "2025-09-19"}, "Unknown parameter: sinse."),
    ],
)
def test_bad_query_values_get_a_clear_400_in_the_envelope(api, acme, params, message):
    vendor, key = acme
    record(vendor, 0)
    answer = calls(api, key, **params)
    assert answer.status_code == 400
    body = answer.json()
    assert body["status"] == 400
    assert body["data"]["message"].startswith(message)
    assert body["data"]["requestId"] == answer["X-Request-ID"]


@pytest.mark.parametrize(
    "header",
    [
        "",
        "Bearer",
        "Basic dXNlcjpwYXNz",
        "Bearer not-a-key",
        "Bearer 0b1d3a39-6f1c-4b6e-9c6d-1d2e3f4a5b6c",
    ],
)
def test_it_refuses_a_missing_or_unknown_key(api, acme, header):
    answer = api.get(URL, HTTP_AUTHORIZATION=header)
    assert answer.status_code == 401
    assert answer.json() == {
        "status": 401,
        "data": {"message": BAD_KEY, "requestId": answer["X-Request-ID"]},
    }


def test_a_revoked_key_reads_nothing(api, acme):
    vendor, key = acme
    record(vendor, 0)
    vendor_key_revoke(vendor_key=VendorKey.objects.get(vendor=vendor))
    assert calls(api, key).status_code == 401


def test_it_counts_toward_the_keys_rate_limit_like_pings(api, acme, settings):
    vendor, key = acme
    vendor.rate_limit_per_minute = 2
    vendor.save()
    statuses = [calls(api, key).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


def test_only_get_is_allowed(api, acme):
    _, key = acme
    answer = api.post(URL, {}, HTTP_AUTHORIZATION=f"Bearer {key}")
    assert answer.status_code == 405
    assert answer.json()["data"]["message"] == "Method not allowed. Use GET."


def _call_on(number, *, match, at, record_=None, sid):
    return InboundCall.objects.create(
        call_sid=sid,
        to_number=number.number,
        from_number="+14801234567",
        match=match,
        call_record=record_,
        received_at=at,
    )


def test_it_says_whether_the_call_arrived_late_and_counts_unmatched_calls(api, acme, rival):
    (vendor, key), (rival_vendor, rival_key) = acme, rival
    number = TransferNumberFactory()

    def held(minutes, owner=vendor, status="expired"):
        reservation = ReservationFactory(
            vendor=owner,
            transfer_number=number,
            created_at=T0 + timedelta(minutes=minutes),
            status=status,
        )
        return record(
            owner, minutes, reservation=reservation, transfer_target=str(number.number),
            outcome=CallRecord.Outcome.EXPIRED,
        )  # fmt: skip

    on_time, late, nothing = held(0, status="connected"), held(10), held(40)
    _call_on(number, match="matched", at=T0 + timedelta(seconds=30), record_=on_time, sid="CA1")
    # Two more calls on the number after Acme's first hold was used: unmatched, and Acme's (the
    # number's last hold before them was Acme's).
    _call_on(number, match="no_reservation", at=T0 + timedelta(minutes=1), sid="CA2")
    _call_on(number, match="no_reservation", at=T0 + timedelta(minutes=2), sid="CA3")
    _call_on(number, match="late", at=T0 + timedelta(minutes=12), record_=late, sid="CA4")
    # Then the rival holds the number and its call arrives; a stray call after it is the
    # rival's, not Acme's.
    rivals = held(30, owner=rival_vendor, status="connected")
    _call_on(number, match="matched", at=T0 + timedelta(minutes=30, seconds=9),
             record_=rivals, sid="CA5")  # fmt: skip
    _call_on(number, match="no_reservation", at=T0 + timedelta(minutes=32), sid="CA6")

    by_id = {
        item["requestId"]: (item["arrival"], item["unmatchedCalls"])
        for item in calls(api, key).json()["data"]["results"]
    }
    assert by_id == {
        str(on_time.request_id): ("on_time", 2),
        str(late.request_id): ("late", 0),
        str(nothing.request_id): (None, 0),
    }
    [rival_item] = calls(api, rival_key).json()["data"]["results"]
    assert rival_item["requestId"] == str(rivals.request_id)
    assert (rival_item["arrival"], rival_item["unmatchedCalls"]) == ("on_time", 1)


def test_it_is_in_the_openapi_schema(api):
    schema = api.get("/api/schema/?format=json").json()
    operation = schema["paths"]["/api/v1/vendor/calls"]["get"]
    assert sorted(operation["responses"]) == ["200", "400", "401", "429", "500"]
    assert {p["name"] for p in operation["parameters"]} >= {"since", "until", "outcome", "cursor"}


def test_a_sandbox_key_reads_its_sandbox_records_and_a_live_key_its_live_ones(api, acme):
    vendor, live_key = acme
    _, sandbox_key = vendor_key_create(vendor=vendor, label="tests", sandbox=True)
    live = record(vendor, 1)
    test_ping = record(vendor, 2, sandbox=True)

    assert request_ids(calls(api, live_key)) == [str(live.request_id)]
    assert request_ids(calls(api, sandbox_key)) == [str(test_ping.request_id)]
