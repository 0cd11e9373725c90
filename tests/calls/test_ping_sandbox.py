"""Sandbox keys: every answer of the contract, forced by the caller's last four digits, holding
nothing; key validation says `sandbox: true`; the records are flagged as sandbox traffic."""

import io
import json
import logging
from datetime import UTC, datetime, timedelta

import pytest
from django.core.cache import cache
from prometheus_client import REGISTRY

from calls.models import CallRecord
from calls.ping.service import PingAnswer, vendor_ping
from routing.models import Agent, AgentLicense, Reservation, TransferNumber
from tests.factories import VendorFactory, floor_build
from vendors.models import Vendor
from vendors.services import vendor_key_create

SANDBOX_KEY = "5a1d0c3e-9f2b-4c6d-8e7f-0a1b2c3d4e5f"
LIVE_KEY = "6ab36a94-5dfb-4336-a559-63da6a5a26d2"
SANDBOX_NUMBER = "+18775550100"
UNEXPECTED = "An unexpected condition was encountered by the server."

# The contract's table: the caller's last four digits, the reason, and the fixed retry hint.
UNAVAILABLE = [
    ("0101", "no_agent", 30),
    ("0102", "concurrency_cap", 60),
    ("0103", "hourly_cap", 1800),
    ("0104", "daily_cap", 43200),
    ("0105", "closed", 28800),
    ("0106", "duplicate_caller", None),
    ("0107", "do_not_call", None),
    ("0108", "consent_missing", None),
]


@pytest.fixture
def vendor(db):
    """Acme Leads, authorized for AZ and CA, with a live key and a sandbox key; two free AZ
    agents and two numbers that no sandbox ping may touch."""
    vendor, _ = VendorFactory.with_key(
        name="Acme Leads", authorized_states=["AZ", "CA"], key=LIVE_KEY
    )
    vendor_key_create(vendor=vendor, label="sandbox", key=SANDBOX_KEY, sandbox=True)
    floor_build(agents={"AZ": 2}, numbers=2)
    return vendor


def routing_rows() -> dict:
    """Every agent, licence, transfer number and reservation row, as stored."""
    return {
        model.__name__: list(model.objects.order_by("pk").values())
        for model in (Agent, AgentLicense, TransferNumber, Reservation)
    }


def sandbox_ping(phone: str, **fields) -> dict:
    return {"vendorKey": SANDBOX_KEY, "phoneNumber": phone, **fields}


def test_key_validation_with_a_sandbox_key_says_sandbox_true(ping, vendor):
    response = ping({"vendorKey": SANDBOX_KEY})

    assert response.status_code == 200
    assert response.json() == {
        "status": 200,
        "data": {
            "vendorActive": True,
            "authorizedStates": ["AZ", "CA"],
            "sandbox": True,
            "requestId": response["X-Request-ID"],
        },
    }
    assert not CallRecord.objects.exists()


def test_key_validation_with_a_live_key_has_no_sandbox_field(ping, vendor):
    response = ping({"vendorKey": LIVE_KEY})

    assert "sandbox" not in response.json()["data"]


@pytest.mark.parametrize("area_code", ["480", "602", "213"])  # AZ, AZ, CA: any the vendor has
@pytest.mark.parametrize("suffix", ["0100", "4567"])  # the documented one, and any other
def test_any_number_but_the_magic_ones_is_available_on_the_sandbox_number(
    ping, vendor, area_code, suffix
):
    before = routing_rows()

    response = ping(sandbox_ping(f"+1{area_code}555{suffix}", lead_id="L-1"))

    data = response.json()["data"]
    assert response.status_code == 200
    assert data == {
        "agentAvailable": True,
        "transferTarget": SANDBOX_NUMBER,
        "ttlSeconds": 60,
        "agentCount": 3,
        "timestamp": data["timestamp"],
        "requestId": response["X-Request-ID"],
    }
    assert routing_rows() == before
    record = CallRecord.objects.get()
    assert record.sandbox is True
    assert str(record.request_id) == response["X-Request-ID"]
    assert record.outcome == CallRecord.Outcome.RESERVED
    assert record.transfer_target == SANDBOX_NUMBER
    assert (record.agent_id, record.reservation_id) == (None, None)
    assert (record.agent_count, record.ttl_seconds) == (3, 60)
    assert record.tracking == {"lead_id": "L-1"}


def test_the_sandbox_answer_follows_its_settings(ping, vendor, settings):
    settings.SANDBOX_TRANSFER_NUMBER = "+12025550123"
    settings.SANDBOX_TTL_SECONDS = 45
    settings.SANDBOX_AGENT_COUNT = 7

    data = ping(sandbox_ping("+14805550100")).json()["data"]

    assert (data["transferTarget"], data["ttlSeconds"], data["agentCount"]) == (
        "+12025550123",
        45,
        7,
    )


@pytest.mark.parametrize(("suffix", "reason", "retry_after"), UNAVAILABLE)
@pytest.mark.parametrize("area_code", ["480", "213"])
def test_each_magic_number_forces_its_unavailable_answer(
    ping, vendor, suffix, reason, retry_after, area_code
):
    before = routing_rows()

    response = ping(sandbox_ping(f"+1{area_code}555{suffix}"))

    data = response.json()["data"]
    expected = {"agentAvailable": False, "reason": reason}
    if retry_after is not None:
        expected["retryAfterSeconds"] = retry_after
    assert response.status_code == 200
    assert data == {
        **expected,
        "timestamp": data["timestamp"],
        "requestId": response["X-Request-ID"],
    }
    assert routing_rows() == before
    record = CallRecord.objects.get()
    assert record.sandbox is True
    assert record.reason == reason
    expected_outcome = "no_agent" if reason == "no_agent" else "refused"
    assert record.outcome == expected_outcome
    assert record.transfer_target == ""


@pytest.fixture
def console():
    """What the console handler writes, as configured from settings.LOGGING."""
    handler = next(h for h in logging.getLogger().handlers if h.get_name() == "console")
    stream = io.StringIO()
    previous = handler.setStream(stream)
    yield stream
    handler.setStream(previous)


def _pings_counted(outcome: str, status: str) -> float:
    return (
        REGISTRY.get_sample_value("callrouting_pings_total", {"outcome": outcome, "status": status})
        or 0.0
    )


def test_0199_answers_the_500_envelope_logged_as_sandbox_forced_not_as_a_crash(
    ping, vendor, console
):
    before = routing_rows()
    errors_before = _pings_counted("error", "500")
    sandbox_before = _pings_counted("sandbox", "500")

    response = ping(sandbox_ping("+14805550199"))

    assert response.status_code == 500
    assert response.json() == {
        "status": 500,
        "data": {"message": UNEXPECTED, "requestId": response["X-Request-ID"]},
    }
    assert routing_rows() == before
    assert not CallRecord.objects.exists()  # as a real 500's rolled-back work
    lines = [json.loads(line) for line in console.getvalue().splitlines()]
    assert [line for line in lines if line["level"] in ("ERROR", "CRITICAL")] == []
    assert not any("Traceback" in json.dumps(line) for line in lines)
    forced = [line for line in lines if line["message"].startswith("Sandbox-forced error")]
    assert len(forced) == 1
    assert forced[0]["level"] == "INFO"
    assert forced[0]["request_id"] == response["X-Request-ID"]
    # Counted as sandbox traffic, not as one of our errors.
    assert _pings_counted("error", "500") == errors_before
    assert _pings_counted("sandbox", "500") == sandbox_before + 1


def test_the_normal_checks_come_first(ping, vendor):
    bad_phone = ping(sandbox_ping("+1480555010"))
    bad_state = ping(sandbox_ping("+14805550100", stateCode="ZZ"))
    unauthorized = ping(sandbox_ping("+14805550101", stateCode="TX"))

    assert bad_phone.status_code == 400
    assert bad_state.status_code == 400
    assert unauthorized.status_code == 403
    assert unauthorized.json()["data"]["message"] == "Vendor is not authorized for state TX."
    # Only the ping that passed the phone and state checks is recorded, as a live one would be.
    record = CallRecord.objects.get()
    assert (record.outcome, record.sandbox) == (CallRecord.Outcome.REJECTED, True)


def test_an_inactive_vendors_sandbox_key_is_refused_as_a_live_one(ping, vendor):
    Vendor.objects.filter(pk=vendor.pk).update(is_active=False)
    cache.clear()

    response = ping(sandbox_ping("+14805550100"))

    assert response.status_code == 403
    assert response.json()["data"]["message"] == "Vendor is not active."
    assert ping({"vendorKey": SANDBOX_KEY}).json()["data"]["vendorActive"] is False


def test_a_revoked_sandbox_key_answers_401(ping, vendor):
    from vendors.models import VendorKey
    from vendors.services import vendor_key_revoke

    vendor_key_revoke(vendor_key=VendorKey.objects.get(sandbox=True))

    assert ping(sandbox_ping("+14805550100")).status_code == 401


def test_a_sandbox_key_has_its_vendors_rate_limit(ping, vendor, settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    Vendor.objects.filter(pk=vendor.pk).update(rate_limit_per_minute=2)
    cache.clear()

    answers = [ping(sandbox_ping(f"+1480555{n:04d}")).status_code for n in (100, 101, 102)]

    assert answers[:2] == [200, 200]
    # A third in the same minute: refused (unless the minute turned over between them).
    assert answers[2] in (429, 200)
    if answers[2] == 200:
        assert ping(sandbox_ping("+14805550103")).status_code == 200
        assert ping(sandbox_ping("+14805550104")).status_code == 429


# --- Repeats: as live ones ------------------------------------------------------------------

T0 = datetime(2025, 9, 19, 17, 45, 23, 123000, tzinfo=UTC)


def _service_ping(phone: str, now: datetime, request_id: str, **fields) -> PingAnswer:
    answer = vendor_ping(payload=sandbox_ping(phone, **fields), request_id=request_id, now=now)
    assert isinstance(answer, PingAnswer)
    return answer


def test_a_second_ping_within_the_ttl_is_a_repeat_with_the_time_left(vendor):
    before = routing_rows()
    first = _service_ping("+14805554567", T0, "00000000-0000-4000-8000-000000000001")
    # The second names another state: one caller is held once, as live.
    repeat = _service_ping(
        "+14805554567",
        T0 + timedelta(seconds=8, milliseconds=500),
        "00000000-0000-4000-8000-000000000002",
        stateCode="CA",
    )

    assert (first.outcome, first.ttl_seconds) == ("reserved", 60)
    assert (repeat.outcome, repeat.transfer_target, repeat.ttl_seconds, repeat.agent_count) == (
        "repeat",
        SANDBOX_NUMBER,
        52,  # 51.5 seconds left, rounded up
        3,
    )
    records = list(CallRecord.objects.order_by("received_at"))
    assert [r.outcome for r in records] == ["reserved", "repeat"]
    assert records[1].repeat_of_id == records[0].pk
    assert records[1].ttl_seconds == 52
    assert all(r.sandbox for r in records)
    assert routing_rows() == before


def test_after_the_ttl_the_same_caller_gets_a_new_hold(vendor):
    _service_ping("+14805554567", T0, "00000000-0000-4000-8000-000000000001")
    last_second = _service_ping(
        "+14805554567", T0 + timedelta(seconds=59.9), "00000000-0000-4000-8000-000000000002"
    )
    later = _service_ping(
        "+14805554567", T0 + timedelta(seconds=60), "00000000-0000-4000-8000-000000000003"
    )

    assert (last_second.outcome, last_second.ttl_seconds) == ("repeat", 1)
    assert (later.outcome, later.ttl_seconds) == ("reserved", 60)


def test_a_repeat_over_http_answers_as_the_first(ping, vendor):
    first = ping(sandbox_ping("+14805554567")).json()["data"]
    second = ping(sandbox_ping("+14805554567")).json()["data"]

    assert second["transferTarget"] == first["transferTarget"] == SANDBOX_NUMBER
    assert 59 <= second["ttlSeconds"] <= 60
    assert second["requestId"] != first["requestId"]
    assert CallRecord.objects.filter(outcome="repeat", sandbox=True).count() == 1


def test_sandbox_and_live_holds_of_one_caller_are_apart(ping, vendor):
    """A sandbox hold is no live reservation: the live key's ping for the same caller reserves
    a real agent, and the sandbox key's next ping repeats its own hold, not the live one."""
    sandbox = ping(sandbox_ping("+14805554567")).json()["data"]
    live = ping({"vendorKey": LIVE_KEY, "phoneNumber": "+14805554567"}).json()["data"]
    sandbox_again = ping(sandbox_ping("+14805554567")).json()["data"]

    assert sandbox["transferTarget"] == sandbox_again["transferTarget"] == SANDBOX_NUMBER
    assert live["agentAvailable"] is True
    assert live["transferTarget"] != SANDBOX_NUMBER
    assert live["agentCount"] == 2  # both live agents were free: the sandbox held neither
    assert Reservation.objects.count() == 1
    assert CallRecord.objects.filter(sandbox=False).get().outcome == "reserved"


def test_a_sandbox_key_works_with_no_agents_or_numbers_at_all(ping, db):
    vendor = VendorFactory(authorized_states=["TX"])
    _, plain = vendor_key_create(vendor=vendor, sandbox=True)

    data = ping({"vendorKey": plain, "phoneNumber": "+12145550100"}).json()["data"]

    assert data["agentAvailable"] is True
    assert data["transferTarget"] == SANDBOX_NUMBER


# --- Settings and the documented schema ------------------------------------------------------


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        (
            {"SANDBOX_TRANSFER_NUMBER": "877-555-0100"},
            "SANDBOX_TRANSFER_NUMBER must be an E.164 number like +18775550100, "
            "not '877-555-0100'.",
        ),
        ({"SANDBOX_TTL_SECONDS": "0"}, "SANDBOX_TTL_SECONDS must be at least 1, not 0."),
        ({"SANDBOX_AGENT_COUNT": "0"}, "SANDBOX_AGENT_COUNT must be at least 1, not 0."),
    ],
)
def test_a_sandbox_setting_that_breaks_the_contract_stops_start_up(environment, message):
    from tests.config.test_settings import start_up

    output = start_up(**environment)

    assert message in output
    assert "loaded" not in output


def test_the_sandbox_ttl_follows_the_live_one_unless_set():
    from tests.config.test_settings import start_up

    code = "from config import settings; print(settings.SANDBOX_TTL_SECONDS)"
    assert start_up(code, RESERVATION_TTL_SECONDS="45").splitlines()[0] == "45"


def test_the_schema_documents_sandbox_on_key_validation(api):
    schema = api.get("/api/schema/?format=json").json()
    ping_200 = schema["paths"]["/functions/v1/vendors-ping"]["post"]["responses"]["200"]
    examples = ping_200["content"]["application/json"]["examples"]
    data = schema["components"]["schemas"]["KeyValidationData"]

    assert data["properties"]["sandbox"]["enum"] == [True]
    assert "sandbox" not in data["required"]
    assert {
        "status": 200,
        "data": {
            "vendorActive": True,
            "authorizedStates": ["AZ", "CA"],
            "sandbox": True,
            "requestId": "12345678-1234-1234-1234-123456789abc",
        },
    } in [example["value"] for example in examples.values()]


def test_the_sweep_marks_a_sandbox_hold_expired_after_its_ttl(vendor):
    from calls.lifecycle import call_records_expire_due

    _service_ping("+14805554567", T0, "00000000-0000-4000-8000-000000000001")
    live_hold = _service_ping(
        "+14805551234", T0 + timedelta(seconds=30), "00000000-0000-4000-8000-000000000002"
    )

    call_records_expire_due(now=T0 + timedelta(seconds=59))
    assert list(CallRecord.objects.order_by("received_at").values_list("outcome", flat=True)) == [
        "reserved",
        "reserved",
    ]
    expiry = call_records_expire_due(now=T0 + timedelta(seconds=60))

    assert expiry.call_records == 1
    assert list(CallRecord.objects.order_by("received_at").values_list("outcome", flat=True)) == [
        "expired",
        "reserved",
    ]
    assert live_hold.outcome == "reserved"
    # Expired, the hold is over: the caller's next sandbox ping is a new hold.
    again = _service_ping(
        "+14805554567", T0 + timedelta(seconds=61), "00000000-0000-4000-8000-000000000003"
    )
    assert again.outcome == "reserved"
