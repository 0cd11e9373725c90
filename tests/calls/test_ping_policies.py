"""Ping policies at their edges: do-not-call, consent, duplicate callers, hours of operation,
caps, the order of the checks, the retry hints and the look-alike field warnings.

Run on SQLite and PostgreSQL alike (on PostgreSQL through the ping's one statement). Moments
are given to the service (a fake clock) where the edge is one of time.
"""

import uuid
from datetime import UTC, date, datetime, time, timedelta

import pytest

from calls.models import CallRecord
from calls.ping.service import PingAnswer, vendor_ping
from routing.models import Agent, DoNotCallNumber, Reservation
from tests.factories import CallRecordFactory, VendorFactory, floor_build
from vendors.models import Holiday, OpeningHours, VendorCap, VendorReservationCount

pytestmark = pytest.mark.django_db(transaction=True)

AZ_CALLER = "+14805550100"  # America/Phoenix, UTC-7 all year
NY_CALLER = "+12125550100"  # America/New_York
TRUSTEDFORM = "https://cert.trustedform.com/" + "0123456789abcdef0123" * 2
LEADID = "A1B2C3D4-E5F6-4711-8899-AABBCCDDEEFF"
# A Monday in winter: New York is UTC-5, Phoenix UTC-7.
MONDAY = date(2026, 12, 7)


def at(day: date, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute, second), tzinfo=UTC)


@pytest.fixture
def floor(db):
    return floor_build(agents={"AZ": 5, "CA": 5, "NY": 5}, numbers=20)


@pytest.fixture
def vendor_and_key(floor):
    return VendorFactory.with_key(authorized_states=["AZ", "CA", "NY"])


@pytest.fixture
def vendor(vendor_and_key):
    return vendor_and_key[0]


@pytest.fixture
def ask(vendor_and_key):
    """Ping as the vendor through the service: ask(phone, now=..., **fields) -> PingAnswer."""
    _, key = vendor_and_key

    def ask(phone: str = AZ_CALLER, *, now: datetime | None = None, **fields) -> PingAnswer:
        payload = {"vendorKey": key, "phoneNumber": phone, **fields}
        answer = vendor_ping(payload=payload, request_id=str(uuid.uuid4()), now=now)
        assert isinstance(answer, PingAnswer)
        return answer

    return ask


def refused(answer: PingAnswer, reason: str, retry: int | None = None) -> bool:
    return (
        answer.agent_available is False
        and answer.outcome == "refused"
        and answer.reason == reason
        and answer.retry_after_seconds == retry
    )


def assert_refusals_hold_nothing(count: int) -> None:
    records = CallRecord.objects.filter(outcome="refused")
    assert records.count() == count
    assert all(r.reservation_id is None and r.agent_id is None for r in records)
    assert not Reservation.objects.filter(call_records__outcome="refused").exists()


# --- Do-not-call ------------------------------------------------------------------------------


def test_a_caller_on_the_do_not_call_list_is_refused_and_nothing_is_held(ask, ping, vendor_and_key):
    DoNotCallNumber.objects.create(number=AZ_CALLER, source="consumer request")

    response = ping({"vendorKey": vendor_and_key[1], "phoneNumber": "(480) 555-0100"})

    data = response.json()["data"]
    assert response.status_code == 200
    assert data["agentAvailable"] is False and data["reason"] == "do_not_call"
    assert "retryAfterSeconds" not in data
    record = CallRecord.objects.get()
    assert (record.outcome, record.reason, record.agent_count) == ("refused", "do_not_call", None)
    assert Reservation.objects.count() == 0
    assert not Agent.objects.filter(held_until__isnull=False).exists()
    # Another caller is not affected.
    assert ask("+14805550101").agent_available is True


# --- Consent ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "evidence",
    [
        {},
        {"xxTrustedFormCertUrl": "https://cert.trustedform.com/0123"},  # too short
        {"xxTrustedFormCertUrl": "https://cert.example.com/" + "a" * 40},  # another host
        {"trusted_form_cert_url": "http://cert.trustedform.com/" + "a" * 40},  # not https
        {"jornaya_leadid": "A1B2C3D4E5F6471188 99AABBCCDDEEFF"},
        {"universal_leadid": "not-a-lead-id"},
        {"leadid_token": 12345},
        {"xxtrustedformcerturl": TRUSTEDFORM},  # not a documented field name
    ],
)
def test_consent_required_refuses_a_ping_without_well_formed_evidence(ask, vendor, evidence):
    vendor.consent_required = True
    vendor.save()

    answer = ask(**evidence)

    assert refused(answer, "consent_missing")
    record = CallRecord.objects.get()
    assert (record.trustedform_cert_url, record.jornaya_leadid) == ("", "")
    assert_refusals_hold_nothing(1)


@pytest.mark.parametrize(
    ("evidence", "stored"),
    [
        ({"xxTrustedFormCertUrl": TRUSTEDFORM}, (TRUSTEDFORM, "")),
        ({"trusted_form_cert_url": TRUSTEDFORM.upper().replace("HTTPS://CERT.TRUSTEDFORM.COM",
          "https://cert.trustedform.com")}, (TRUSTEDFORM.upper().replace(
              "HTTPS://CERT.TRUSTEDFORM.COM", "https://cert.trustedform.com"), "")),
        ({"jornaya_leadid": LEADID}, ("", LEADID)),
        ({"universal_leadid": LEADID.lower()}, ("", LEADID.lower())),
        ({"leadid_token": LEADID, "xxTrustedFormCertUrl": TRUSTEDFORM}, (TRUSTEDFORM, LEADID)),
    ],
)  # fmt: skip
def test_well_formed_evidence_admits_the_ping_and_is_kept_on_the_record(
    ask, vendor, evidence, stored
):
    vendor.consent_required = True
    vendor.save()

    answer = ask(**evidence)

    assert answer.agent_available is True
    record = CallRecord.objects.get()
    assert (record.trustedform_cert_url, record.jornaya_leadid) == stored
    assert all(record.tracking[name] == value for name, value in evidence.items())


def test_evidence_is_kept_when_consent_is_not_required_and_ignored_when_malformed(ask):
    ask(xxTrustedFormCertUrl=TRUSTEDFORM, jornaya_leadid="bad")
    ask("+14805550101", jornaya_leadid=LEADID)

    first, second = CallRecord.objects.order_by("id")
    assert (first.trustedform_cert_url, first.jornaya_leadid) == (TRUSTEDFORM, "")
    assert (second.trustedform_cert_url, second.jornaya_leadid) == ("", LEADID)
    assert first.outcome == second.outcome == "reserved"


# --- Duplicate callers --------------------------------------------------------------------------


def transferred(vendor, phone: str, connected_at: datetime):
    return CallRecordFactory(
        vendor=vendor,
        phone_number=phone,
        outcome="completed",
        received_at=connected_at,
        connected_at=connected_at,
        ended_at=connected_at + timedelta(minutes=5),
    )


def test_the_duplicate_window_refuses_through_its_last_moment_and_not_after(ask, vendor):
    vendor.duplicate_window_days = 30
    vendor.save()
    now = at(MONDAY, 18)
    transferred(vendor, AZ_CALLER, now - timedelta(days=30) + timedelta(seconds=1))
    transferred(vendor, "+14805550101", now - timedelta(days=30))

    assert refused(ask(AZ_CALLER, now=now), "duplicate_caller")
    assert ask("+14805550101", now=now).agent_available is True


def test_duplicates_are_off_by_default_and_the_window_is_per_vendor_unless_scoped_to_all(
    ask, vendor
):
    other = VendorFactory()
    now = at(MONDAY, 18)
    transferred(other, AZ_CALLER, now - timedelta(days=1))
    transferred(vendor, "+14805550101", now - timedelta(days=1))
    # Off: a caller this vendor transferred yesterday is admitted.
    assert ask("+14805550101", now=now).agent_available is True
    Reservation.objects.update(status="released", ended_at=now)

    vendor.duplicate_window_days = 7
    vendor.save()
    assert ask(AZ_CALLER, now=now).agent_available is True  # the other vendor's transfer
    Reservation.objects.update(status="released", ended_at=now)

    vendor.duplicate_scope = "all_vendors"
    vendor.save()
    assert refused(ask(AZ_CALLER, now=now), "duplicate_caller")


def test_a_ping_that_never_connected_is_no_duplicate(ask, vendor):
    vendor.duplicate_window_days = 7
    vendor.save()
    CallRecordFactory(vendor=vendor, phone_number=AZ_CALLER, outcome="expired")

    assert ask(AZ_CALLER).agent_available is True


# --- Hours of operation -----------------------------------------------------------------------


def weekdays_nine_to_five(vendor=None) -> None:
    for weekday in range(5):
        OpeningHours.objects.create(vendor=vendor, weekday=weekday, opens=time(9), closes=time(17))


@pytest.mark.parametrize(
    ("phone", "state_code", "opens_utc"),
    [
        (AZ_CALLER, None, 16),  # 09:00 in Phoenix is 16:00 UTC
        (NY_CALLER, None, 14),  # 09:00 in New York is 14:00 UTC
        (NY_CALLER, "AZ", 16),  # stateCode given: Arizona's zone, whatever the area code
    ],
)
def test_the_opening_hour_is_judged_in_the_callers_time_zone(ask, phone, state_code, opens_utc):
    weekdays_nine_to_five()  # the operator's default
    fields = {"stateCode": state_code} if state_code else {}
    before = at(MONDAY, opens_utc) - timedelta(seconds=1)

    assert refused(ask(phone, now=before, **fields), "closed", retry=1)
    assert refused(ask(phone, now=before - timedelta(minutes=30), **fields), "closed", 1801)
    assert ask(phone, now=at(MONDAY, opens_utc), **fields).agent_available is True


def test_at_closing_time_the_retry_hint_is_the_next_mornings_opening(ask):
    weekdays_nine_to_five()
    # 17:00 in New York on Monday (22:00 UTC): closed until 09:00 on Tuesday, 16 hours on.
    assert refused(ask(NY_CALLER, now=at(MONDAY, 22)), "closed", retry=16 * 3600)
    # Friday 17:00: until Monday 09:00.
    friday = MONDAY + timedelta(days=4)
    assert refused(ask(NY_CALLER, now=at(friday, 22)), "closed", retry=64 * 3600)
    assert ask(NY_CALLER, now=at(MONDAY, 22) - timedelta(seconds=1)).agent_available is True


def test_a_vendors_own_hours_replace_the_operators(ask, vendor):
    weekdays_nine_to_five()
    OpeningHours.objects.create(vendor=vendor, weekday=0, opens=time(20), closes=time(0))
    # 21:00 Monday in New York (02:00 UTC Tuesday): the operator is closed, the vendor open.
    assert ask(NY_CALLER, now=at(MONDAY + timedelta(days=1), 2)).agent_available is True
    # 10:00 Monday: open for the operator, not for the vendor (it opens at 20:00).
    assert refused(ask("+12125550101", now=at(MONDAY, 15)), "closed", retry=10 * 3600)


def test_a_holiday_closes_the_whole_day_in_the_callers_zone(ask, vendor):
    weekdays_nine_to_five()
    Holiday.objects.create(date=MONDAY, name="Operator holiday")
    # Monday 10:00 in New York: closed all day, open Tuesday at 09:00 (23 hours on).
    assert refused(ask(NY_CALLER, now=at(MONDAY, 15)), "closed", retry=23 * 3600)
    # Tuesday, a vendor's own holiday, for this vendor only.
    Holiday.objects.create(vendor=vendor, date=MONDAY + timedelta(days=1))
    tuesday_ten = at(MONDAY + timedelta(days=1), 15)
    assert refused(ask(NY_CALLER, now=tuesday_ten), "closed", retry=23 * 3600)
    _, other_key = VendorFactory.with_key(authorized_states=["NY"])
    answer = vendor_ping(
        payload={"vendorKey": other_key, "phoneNumber": NY_CALLER},
        request_id=str(uuid.uuid4()),
        now=tuesday_ten,
    )
    assert answer.agent_available is True


def test_without_any_schedule_a_vendor_is_always_open(ask):
    assert ask(NY_CALLER, now=at(MONDAY + timedelta(days=6), 3)).agent_available is True


def test_hours_edited_after_a_ping_apply_to_the_next_ping(ask):
    assert ask(NY_CALLER, now=at(MONDAY, 22)).agent_available is True  # the vendor is cached

    weekdays_nine_to_five()

    assert refused(ask("+12125550101", now=at(MONDAY, 22)), "closed", retry=16 * 3600)


# --- Caps -------------------------------------------------------------------------------------


def callers(count: int, prefix: str = "+1480555") -> list[str]:
    return [f"{prefix}{n:04d}" for n in range(200, 200 + count)]


def test_the_concurrency_caps_last_admitted_ping_and_first_refused(ask, vendor, settings):
    VendorCap.objects.create(vendor=vendor, most_at_once=3)
    now = at(MONDAY, 18)
    first, second, third, fourth = callers(4)

    assert ask(first, now=now).agent_available is True
    assert ask(second, now=now + timedelta(seconds=10)).agent_available is True
    assert ask(third, now=now + timedelta(seconds=20)).agent_available is True  # the last
    # Refused until the first hold ends, 60 - 25 seconds on.
    assert refused(ask(fourth, now=now + timedelta(seconds=25)), "concurrency_cap", retry=35)
    # A repeat holds nothing new: answered as one, cap or not.
    assert ask(second, now=now + timedelta(seconds=26)).outcome == "repeat"
    # The first hold ended: room for one.
    assert ask(fourth, now=now + timedelta(seconds=61)).agent_available is True
    assert_refusals_hold_nothing(1)


def test_calls_in_progress_count_toward_the_concurrency_cap(ask, vendor, settings):
    VendorCap.objects.create(vendor=vendor, most_at_once=2)
    CallRecordFactory(vendor=vendor, outcome="connected", connected_at=at(MONDAY, 17))
    now = at(MONDAY, 18)

    assert ask(callers(1)[0], now=now).agent_available is True
    # The call in progress ends when it ends; the hold in 60 s.
    assert refused(ask(callers(2)[1], now=now), "concurrency_cap", retry=60)
    CallRecord.objects.filter(outcome="connected").update(outcome="completed")
    Reservation.objects.update(status="released", ended_at=now)
    CallRecordFactory(vendor=vendor, outcome="connected", connected_at=at(MONDAY, 17))
    CallRecordFactory(vendor=vendor, outcome="connected", connected_at=at(MONDAY, 17))
    settings.PING_RETRY_AFTER_DEFAULT_SECONDS = 45
    # Only calls in progress: the configured default.
    assert refused(ask(callers(3)[2], now=now), "concurrency_cap", retry=45)


def test_the_hourly_caps_last_admitted_ping_first_refused_and_the_next_hour(ask, vendor):
    VendorCap.objects.create(vendor=vendor, most_per_hour=2)
    first, second, third = callers(3)

    assert ask(first, now=at(MONDAY, 18, 10)).agent_available is True
    assert ask(second, now=at(MONDAY, 18, 59, 0)).agent_available is True  # the last
    assert refused(ask(third, now=at(MONDAY, 18, 59, 30)), "hourly_cap", retry=30)
    assert ask(third, now=at(MONDAY, 19)).agent_available is True  # a new hour


def test_the_daily_cap_counts_from_midnight_in_the_operators_zone(ask, vendor, settings):
    settings.OPERATOR_TIME_ZONE = "America/New_York"
    VendorCap.objects.create(vendor=vendor, most_per_day=2)
    first, second, third = callers(3)
    # New York's Monday runs from 05:00 UTC Monday to 05:00 UTC Tuesday.
    assert ask(first, now=at(MONDAY, 6)).agent_available is True
    assert ask(second, now=at(MONDAY + timedelta(days=1), 4)).agent_available is True
    assert refused(
        ask(third, now=at(MONDAY + timedelta(days=1), 4, 30)), "daily_cap", retry=30 * 60
    )
    assert ask(third, now=at(MONDAY + timedelta(days=1), 5)).agent_available is True


def test_a_cap_narrowed_to_a_state_counts_that_state_only(ask, vendor):
    VendorCap.objects.create(vendor=vendor, state="CA", most_at_once=1)
    now = at(MONDAY, 18)

    assert ask("+14155550100", now=now).agent_available is True  # CA
    assert refused(ask("+14155550101", now=now), "concurrency_cap", retry=60)
    assert ask(AZ_CALLER, now=now).agent_available is True
    assert ask("+14805550101", now=now).agent_available is True


def test_a_vendor_wide_cap_and_a_states_cap_both_apply(ask, vendor):
    VendorCap.objects.create(vendor=vendor, most_per_hour=3)
    VendorCap.objects.create(vendor=vendor, state="AZ", most_per_hour=1)
    now = at(MONDAY, 18)

    assert ask(AZ_CALLER, now=now).agent_available is True
    assert refused(ask("+14805550101", now=now), "hourly_cap", retry=3600)
    assert ask("+14155550100", now=now).agent_available is True
    assert ask("+14155550101", now=now).agent_available is True
    assert refused(ask("+14155550102", now=now), "hourly_cap", retry=3600)


def test_an_hours_count_is_the_sum_of_its_slots(ask, vendor):
    # The statement adds to one slot per database connection; a cap reads them all.
    VendorCap.objects.create(vendor=vendor, most_per_hour=3)
    hour = at(MONDAY, 18)
    for slot in (3, 11):
        VendorReservationCount.objects.create(
            vendor=vendor, period="hour", starts_at=hour, slot=slot, reservations=1
        )

    assert ask(callers(1)[0], now=hour + timedelta(minutes=5)).agent_available is True
    assert refused(ask(callers(2)[1], now=hour + timedelta(minutes=6)), "hourly_cap", 54 * 60)


def test_refused_pings_do_not_count_toward_the_window_caps(ask, vendor):
    VendorCap.objects.create(vendor=vendor, most_per_hour=1)
    DoNotCallNumber.objects.create(number=AZ_CALLER)
    now = at(MONDAY, 18)

    assert refused(ask(AZ_CALLER, now=now), "do_not_call")
    assert ask("+14805550101", now=now).agent_available is True


# --- The order of the checks ------------------------------------------------------------------


def test_the_checks_run_in_the_documented_order(ask, vendor):
    now = at(MONDAY, 22)  # closed below
    vendor.consent_required = True
    vendor.duplicate_window_days = 7
    vendor.save()
    weekdays_nine_to_five()
    VendorCap.objects.create(vendor=vendor, most_at_once=0)
    transferred(vendor, NY_CALLER, now - timedelta(days=1))
    DoNotCallNumber.objects.create(number=NY_CALLER)

    assert ask(NY_CALLER, now=now).reason == "do_not_call"
    DoNotCallNumber.objects.all().delete()
    assert ask(NY_CALLER, now=now).reason == "consent_missing"
    assert ask(NY_CALLER, now=now, jornaya_leadid=LEADID).reason == "duplicate_caller"
    assert ask("+12125550101", now=now, jornaya_leadid=LEADID).reason == "closed"
    assert ask("+12125550101", now=at(MONDAY, 15), jornaya_leadid=LEADID).reason == (
        "concurrency_cap"
    )
    assert_refusals_hold_nothing(5)


def test_a_live_hold_answers_as_a_repeat_even_once_the_caller_is_listed(ask):
    first = ask(AZ_CALLER)
    DoNotCallNumber.objects.create(number=AZ_CALLER)

    repeat = ask(AZ_CALLER)

    assert repeat.outcome == "repeat" and repeat.transfer_target == first.transfer_target


# --- Retry hints for no agent -------------------------------------------------------------------


def test_no_agent_retries_when_the_soonest_hold_in_the_state_ends(ask, floor, settings):
    Agent.objects.filter(pk__in=[a.pk for a in floor.agents["AZ"][1:]]).update(status="offline")
    now = at(MONDAY, 18)
    assert ask(AZ_CALLER, now=now).agent_available is True

    answer = ask("+14805550101", now=now + timedelta(seconds=15))

    assert (answer.outcome, answer.reason, answer.retry_after_seconds) == (
        "no_agent",
        "no_agent",
        45,
    )
    assert CallRecord.objects.get(phone_number="+14805550101").reason == "no_agent"
    # In wrap-up: the same, from the agent's held_until.
    Agent.objects.filter(pk=floor.agents["AZ"][0].pk).update(
        held_until=now + timedelta(seconds=100)
    )
    assert ask("+14805550102", now=now + timedelta(seconds=70)).retry_after_seconds == 30
    # Every agent offline: the configured default.
    Agent.objects.update(status="offline")
    settings.PING_RETRY_AFTER_DEFAULT_SECONDS = 90
    assert ask("+14805550103", now=now).retry_after_seconds == 90


# --- Warnings for look-alike field names --------------------------------------------------------


@pytest.mark.parametrize(
    "field", ["phone_number", "PhoneNumber", "PHONE", "state", "State_Code", "vendor_key"]
)
def test_a_key_validation_with_a_look_alike_field_warns(ping, vendor_and_key, field):
    response = ping({"vendorKey": vendor_and_key[1], field: "4805550100"})

    data = response.json()["data"]
    assert response.status_code == 200 and "vendorActive" in data
    assert len(data["warnings"]) == 1 and f"'{field}'" in data["warnings"][0]
    assert CallRecord.objects.count() == 0


def test_a_ping_answer_carries_warnings_only_when_there_are_some(ping, vendor_and_key):
    key = vendor_and_key[1]
    clean = ping({"vendorKey": key, "phoneNumber": AZ_CALLER, "stateCode": "AZ", "lead_id": "1"})
    warned = ping({"vendorKey": key, "phoneNumber": "+14805550101", "state": "AZ"})

    assert "warnings" not in clean.json()["data"]
    data = warned.json()["data"]
    assert data["agentAvailable"] is True
    assert data["warnings"] == [
        "Field 'state' is not part of the contract (did you mean 'stateCode'?); "
        "it was stored as tracking data."
    ]
    assert CallRecord.objects.get(phone_number="+14805550101").tracking == {"state": "AZ"}


def test_the_unavailable_answer_renders_reason_and_retry_in_the_contracts_words(
    ping, vendor_and_key, vendor
):
    VendorCap.objects.create(vendor=vendor, most_per_hour=0)

    response = ping({"vendorKey": vendor_and_key[1], "phoneNumber": AZ_CALLER, "Phone": "x"})

    data = response.json()["data"]
    assert list(data) == [
        "agentAvailable",
        "reason",
        "retryAfterSeconds",
        "warnings",
        "timestamp",
        "requestId",
    ]
    assert data["reason"] == "hourly_cap" and 1 <= data["retryAfterSeconds"] <= 3600
