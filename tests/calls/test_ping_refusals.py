"""Every refusal in the contract: status, exact message, the envelope, and nothing written."""

import json

import pytest
from django.test import override_settings
from django.utils import timezone

from calls.models import CallRecord
from calls.ping import views
from routing.models import Agent, Reservation
from tests.conftest import DEMO_KEY, PING_URL
from tests.factories import AgentFactory, TransferNumberFactory, VendorFactory
from vendors.models import Vendor, VendorKey

BAD_KEY = "Vendor key was not found or not formatted correctly."
BAD_PHONE = "Invalid phone number format. Please provide a valid US phone number."
BAD_STATE = "Invalid state code. Please provide a valid two-letter US state code."
BAD_BODY = "Request body must be a JSON object."


@pytest.fixture(autouse=True)
def vendor(db):
    """Acme Leads, whose key is DEMO_KEY, authorized for AZ and CA; an agent licensed for AZ
    and a transfer number, so that a ping these tests refuse would otherwise reserve."""
    vendor, _ = VendorFactory.with_key(
        name="Acme Leads", authorized_states=["AZ", "CA"], key=DEMO_KEY
    )
    AgentFactory(licensed_states=["AZ"])
    TransferNumberFactory()
    return vendor


def assert_refused(response, status: int, message: str) -> None:
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body == {
        "status": status,
        "data": {"message": message, "requestId": response["X-Request-ID"]},
    }


def assert_nothing_written() -> None:
    assert CallRecord.objects.count() == 0
    assert Reservation.objects.count() == 0
    assert not Agent.objects.filter(held_until__isnull=False).exists()


@pytest.mark.parametrize(
    "key",
    [
        None,
        12345,
        ["6ab36a94-5dfb-4336-a559-63da6a5a26d2"],
        "",
        "not-a-key",
        "6ab36a945dfb4336a55963da6a5a26d2",  # no dashes: not the canonical form
        "{6ab36a94-5dfb-4336-a559-63da6a5a26d2}",
        " 6ab36a94-5dfb-4336-a559-63da6a5a26d2",
        "6ab36a94-5dfb-4336-a559-63da6a5a26d2\n",
        "00000000-0000-4000-8000-000000000000",  # well formed, unknown
    ],
)
def test_it_refuses_a_missing_malformed_or_unknown_key(ping, key):
    body = {"phoneNumber": "+14801234567"}
    if key is not None:
        body["vendorKey"] = key

    assert_refused(ping(body), 401, BAD_KEY)
    assert_nothing_written()


def test_it_accepts_the_key_in_any_letter_case(ping):
    response = ping({"vendorKey": DEMO_KEY.upper()})

    assert response.status_code == 200
    assert response.json()["data"]["authorizedStates"] == ["AZ", "CA"]


def test_it_refuses_a_revoked_key(ping):
    VendorKey.objects.update(revoked_at=timezone.now())

    assert_refused(ping({"vendorKey": DEMO_KEY}), 401, BAD_KEY)


def test_it_reports_a_bad_key_before_a_bad_phone_number(ping):
    assert_refused(ping({"vendorKey": "nope", "phoneNumber": "nope"}), 401, BAD_KEY)


def test_it_reports_a_bad_phone_number_before_a_bad_state(ping):
    response = ping({"vendorKey": DEMO_KEY, "phoneNumber": "nope", "stateCode": "ZZ"})

    assert_refused(response, 400, BAD_PHONE)


@pytest.mark.parametrize(
    "phone",
    [
        None,
        "",
        4801234567,
        14801234567,
        True,
        ["+14801234567"],
        {"number": "+14801234567"},
        "480123456",  # too short
        "+144801234567",  # too long
        "480-CALL-NOW",
        "+44 20 7946 0958",  # another country
        "+18005551234",  # toll-free
        "+18885551234",
        "+15005551234",  # non-geographic
        "+19005551234",
        "+14165551234",  # Canada
        "+1 (480) 123-4567 ext 5",
        "٤٨٠١٢٣٤٥٦٧",  # not ASCII digits
        "+1480123456\uff17",  # a full-width seven
        "1480 123 4567 1",
    ],
)
def test_it_refuses_anything_but_a_us_geographic_number(ping, phone):
    assert_refused(ping({"vendorKey": DEMO_KEY, "phoneNumber": phone}), 400, BAD_PHONE)
    assert_nothing_written()


@pytest.mark.parametrize("state", ["", "A", "AZZ", "ZZ", "Arizona", 12, True, ["AZ"], "A Z"])
def test_it_refuses_an_invalid_state_code(ping, state):
    response = ping({"vendorKey": DEMO_KEY, "phoneNumber": "+14801234567", "stateCode": state})

    assert_refused(response, 400, BAD_STATE)
    assert_nothing_written()


def test_it_ignores_the_state_code_on_a_key_validation(ping):
    response = ping({"vendorKey": DEMO_KEY, "stateCode": "not a state"})

    assert response.status_code == 200
    assert response.json()["data"]["vendorActive"] is True


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"[]",
        b'["vendorKey"]',
        b'"a string"',
        b"42",
        b"null",
        b'{"vendorKey": "6ab36a94-5dfb-4336-a559-63da6a5a26d2",',
        b'{"vendorKey": NaN}',
        b'{"a": Infinity}',
        b"\xff\xfe\x00garbage",
        b"[" * 5000 + b"]" * 5000,
        b'{"a":' * 2500 + b"1" + b"}" * 2500,
    ],
    ids=lambda raw: raw[:24].decode("latin-1"),
)
def test_it_refuses_a_body_that_is_not_a_json_object(ping, raw):
    assert_refused(ping(raw), 400, BAD_BODY)
    assert_nothing_written()


def test_it_refuses_a_body_over_16_kib(ping):
    body = json.dumps(
        {"vendorKey": DEMO_KEY, "phoneNumber": "+14801234567", "note": "x" * 16 * 1024}
    )

    assert_refused(ping(body), 413, "Request body too large.")
    assert_nothing_written()


def test_it_accepts_a_body_of_exactly_16_kib(ping):
    body = {"vendorKey": DEMO_KEY, "phoneNumber": "+14801234567", "note": ""}
    padding = 16 * 1024 - len(json.dumps(body))
    body["note"] = "x" * padding
    raw = json.dumps(body)
    assert len(raw) == 16 * 1024

    assert ping(raw).status_code == 200


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete", "head", "options"])
def test_it_refuses_every_method_but_post(api, method):
    response = getattr(api, method)(PING_URL)

    assert response.status_code == 405
    assert response["Allow"] == "POST"
    if method != "head":
        assert_refused(response, 405, "Method not allowed. Use POST.")


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/octet-stream"]
)
def test_it_reads_the_body_as_json_whatever_the_content_type(ping, content_type):
    response = ping({"vendorKey": DEMO_KEY}, content_type=content_type)

    assert response.status_code == 200
    assert response.json()["data"]["authorizedStates"] == ["AZ", "CA"]


def test_it_answers_json_whatever_the_client_accepts(ping):
    response = ping({"vendorKey": DEMO_KEY}, HTTP_ACCEPT="text/html")

    assert response.status_code == 200
    assert response.json()["data"]["vendorActive"] is True


def test_it_refuses_an_inactive_vendor_and_records_the_rejection(ping):
    Vendor.objects.filter(name="Acme Leads").update(is_active=False)

    response = ping({"vendorKey": DEMO_KEY, "phoneNumber": "+14801234567", "lead_id": "L-1"})

    assert_refused(response, 403, "Vendor is not active.")
    record = CallRecord.objects.get()
    assert record.outcome == CallRecord.Outcome.REJECTED
    assert record.rejected_reason == "Vendor is not active."
    assert str(record.request_id) == response["X-Request-ID"]
    assert record.tracking == {"lead_id": "L-1"}
    assert Reservation.objects.count() == 0


def test_an_inactive_vendor_can_still_validate_its_key(ping):
    Vendor.objects.filter(name="Acme Leads").update(is_active=False)

    response = ping({"vendorKey": DEMO_KEY})

    assert response.json()["data"] == {
        "vendorActive": False,
        "authorizedStates": ["AZ", "CA"],
        "requestId": response["X-Request-ID"],
    }


def test_it_refuses_a_state_the_vendor_lacks_and_records_the_rejection(ping):
    response = ping({"vendorKey": DEMO_KEY, "phoneNumber": "+12145550100"})  # Dallas, TX

    assert_refused(response, 403, "Vendor is not authorized for state TX.")
    record = CallRecord.objects.get()
    assert (record.outcome, record.state, record.state_source) == ("rejected", "TX", "area_code")
    assert Reservation.objects.count() == 0


def test_it_answers_an_unrouted_vendor_path_in_the_envelope(api):
    response = api.post("/functions/v1/nowhere", data="{}", content_type="application/json")

    assert_refused(response, 404, "Not found.")


@pytest.mark.parametrize("debug", [False, True])
def test_it_answers_an_unexpected_failure_in_the_envelope_without_a_trace(ping, monkeypatch, debug):
    def crash(**kwargs):
        raise RuntimeError("database on fire")

    monkeypatch.setattr(views, "vendor_ping", crash)

    with override_settings(DEBUG=debug):
        response = ping({"vendorKey": DEMO_KEY, "phoneNumber": "+14801234567"})

    assert_refused(response, 500, "An unexpected condition was encountered by the server.")
    assert b"database on fire" not in response.content
    assert b"Traceback" not in response.content


def test_a_refused_request_is_logged_with_its_request_id(ping, caplog):
    caplog.set_level("INFO")

    response = ping({"vendorKey": "not-a-key", "phoneNumber": "+14801234567"})

    refusals = [r for r in caplog.records if "Refused" in r.getMessage()]
    assert len(refusals) == 1
    assert refusals[0].request_id == response["X-Request-ID"]
    assert BAD_KEY in refusals[0].getMessage()
