"""On PostgreSQL a ping is one SQL statement; it must write exactly what the transactional path
with the ORM allocation (the SQLite path) writes. Each case runs both paths from the same state,
on PostgreSQL, and compares the answers and the stored rows."""

import threading
import uuid
from datetime import time as datetime_time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.forms.models import model_to_dict
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from calls.models import CallRecord
from calls.ping import service as services
from calls.ping.request import read_ping_fields
from calls.ping.service import PingAnswer
from routing.allocation import reservation_lock_caller
from routing.models import Agent, DoNotCallNumber, Reservation
from tests.conftest import DEMO_KEY
from tests.factories import CallRecordFactory
from vendors.models import OpeningHours, Vendor, VendorCap, VendorReservationCount
from vendors.policies import vendor_policies_load

pytestmark = [pytest.mark.postgres, pytest.mark.usefixtures("demo")]


def ping_payload(phone: str = "+14805550100", **extra) -> dict:
    return {"vendorKey": DEMO_KEY, "phoneNumber": phone, "lead_id": "L-1", **extra}


def stored_rows() -> dict:
    """Everything a ping writes, without the ids that differ from run to run."""

    def rows(model, exclude):
        return [
            {k: v for k, v in model_to_dict(row).items() if k not in exclude}
            for row in model.objects.order_by("id")
        ]

    return {
        "reservations": rows(Reservation, {"id"}),
        "records": rows(CallRecord, {"id", "request_id", "reservation"}),
        "records_with_a_reservation": [
            record.reservation_id is not None for record in CallRecord.objects.order_by("id")
        ],
        "agents": list(Agent.objects.order_by("id").values("id", "held_until")),
        "counts": list(
            VendorReservationCount.objects.order_by("id").values(
                "vendor_id", "state", "period", "starts_at", "reservations"
            )
        ),
    }


def run_both_paths(
    payload: dict, now
) -> tuple[tuple[PingAnswer | None, dict], tuple[PingAnswer | None, dict]]:
    """(answer, rows) of the one-statement path, then of the transactional path with the ORM
    allocation (what SQLite runs), each from the same start on the same PostgreSQL database."""
    vendor = Vendor.objects.get(name="Demo Vendor")
    vendor.policies = vendor_policies_load(vendor)  # as the cached vendor carries them
    fields = read_ping_fields(payload)
    results = []
    for reserve in (services._reserve_in_one_statement, services._reserve_in_transaction):
        with transaction.atomic():
            answer = reserve(vendor, fields, str(uuid.uuid4()), now)
            assert answer is not None  # the statement answered it, not the path after it
            results.append((answer, stored_rows()))
            transaction.set_rollback(True)
    return results[0], results[1]


@pytest.mark.django_db(transaction=True)
def test_a_ping_is_one_statement_once_the_key_is_cached(ping):
    ping(ping_payload("+14805550100"))  # fills the key cache and writes the key's last use

    with CaptureQueriesContext(connection) as queries:
        answer = ping(ping_payload("+14805550101"))

    assert answer.status_code == 200
    assert answer.json()["data"]["agentAvailable"] is True
    assert len(queries) == 1
    assert "pg_try_advisory_xact_lock" in queries[0]["sql"]
    assert CallRecord.objects.get(phone_number="+14805550101").outcome == "reserved"


def test_a_reservation_is_stored_as_the_transactional_path_stores_it():
    (fast_answer, fast_rows), (orm_answer, orm_rows) = run_both_paths(
        ping_payload(), timezone.now()
    )

    assert fast_answer.agent_available is True
    assert fast_answer == orm_answer
    assert fast_rows == orm_rows
    assert fast_rows["records"][0]["outcome"] == "reserved"
    assert fast_rows["records_with_a_reservation"] == [True]


def test_no_agent_is_stored_as_the_transactional_path_stores_it():
    Agent.objects.update(status=Agent.Status.OFFLINE)

    (fast_answer, fast_rows), (orm_answer, orm_rows) = run_both_paths(
        ping_payload(), timezone.now()
    )

    assert fast_answer.agent_available is False
    assert fast_answer == orm_answer
    assert fast_rows == orm_rows
    assert fast_rows["records"][0]["outcome"] == "no_agent"
    assert fast_rows["records"][0]["agent_count"] == 0


def test_stale_reservations_in_the_way_are_expired_as_the_transactional_path_does():
    now = timezone.now()
    # Only one AZ agent is left, and the same caller holds it with a reservation past its TTL
    # that no worker has marked yet.
    az_agents = list(Agent.objects.filter(licenses__state="AZ").order_by("id"))
    Agent.objects.filter(pk__in=[a.pk for a in az_agents[1:]]).update(status="offline")
    earlier = now - timedelta(seconds=120)
    services.vendor_ping(payload=ping_payload(), request_id=str(uuid.uuid4()), now=earlier)
    assert Reservation.objects.get().status == "active"

    (fast_answer, fast_rows), (orm_answer, orm_rows) = run_both_paths(ping_payload(), now)

    assert fast_answer.agent_available is True
    assert fast_answer == orm_answer
    assert fast_rows == orm_rows
    old, new = fast_rows["reservations"]
    assert (old["status"], old["ended_at"]) == ("expired", earlier + timedelta(seconds=60))
    assert new["status"] == "active"


@pytest.mark.django_db(transaction=True)
def test_a_repeat_leaves_the_statement_for_the_transactional_path(ping):
    first = ping(ping_payload()).json()["data"]

    with CaptureQueriesContext(connection) as queries:
        repeat = ping(ping_payload()).json()["data"]

    assert repeat["transferTarget"] == first["transferTarget"]
    assert "pg_try_advisory_xact_lock" in queries[0]["sql"]
    assert list(CallRecord.objects.order_by("id").values_list("outcome", flat=True)) == [
        "reserved",
        "repeat",
    ]
    assert Reservation.objects.count() == 1


def test_with_expiry_tasks_off_a_reservation_queues_nothing(
    ping, settings, django_capture_on_commit_callbacks
):
    settings.RESERVATION_EXPIRY_TASKS = False

    with django_capture_on_commit_callbacks() as callbacks:
        answer = ping(ping_payload())

    assert answer.json()["data"]["agentAvailable"] is True
    assert callbacks == []
    assert Reservation.objects.get().status == "active"


def test_with_expiry_tasks_on_a_reservation_queues_its_expiry(
    ping, settings, django_capture_on_commit_callbacks
):
    settings.RESERVATION_EXPIRY_TASKS = True

    with django_capture_on_commit_callbacks() as callbacks:
        ping(ping_payload())

    assert len(callbacks) == 1


def test_the_pgbench_script_runs_the_pings_statement_and_reserves():
    # `make bench` measures PostgreSQL alone with this script: it must be the real statement.
    from io import StringIO

    from django.core.management import call_command

    from bench.management.commands.ping_statement_pgbench import Command
    from routing.geography import AREA_CODE_STATES
    from tests.conftest import ALL_STATES_KEY

    output = StringIO()
    # The bench app is installed only with BENCH_ENDPOINTS on: its command, called directly.
    call_command(Command(), "--vendor-key", ALL_STATES_KEY, stdout=output)
    lines = output.getvalue().splitlines()
    assert lines[0] == r"\set n random(1, 9999999)"
    states = sorted(set(AREA_CODE_STATES.values()))
    # pgbench's variables, as pgbench would fill them in: a caller in California.
    statement = lines[2].replace(":n::", "4242::").replace(":s", str(states.index("CA") + 1))

    with connection.cursor() as cursor:
        cursor.execute(statement.rstrip(";"))
        acquired, live_id, reservation_id, number, agent_count = cursor.fetchone()[:5]

    assert acquired and live_id is None and reservation_id is not None and agent_count >= 1
    reservation = Reservation.objects.get(pk=reservation_id)
    assert reservation.state == "CA" and str(reservation.phone_number) == "+15550004242"
    assert str(reservation.transfer_number.number) == number
    record = CallRecord.objects.get(reservation=reservation)
    assert record.outcome == CallRecord.Outcome.RESERVED and record.tracking == {
        "source": "pgbench"
    }


@pytest.mark.django_db(transaction=True)
def test_a_caller_the_transactional_path_has_locked_is_left_to_it_by_the_statement():
    # One lock for the caller, whichever path takes it: the statement writes nothing for a
    # caller whose ping is in the transactional path, and goes on for any other.
    vendor = Vendor.objects.get(name="Demo Vendor")
    locked, done = threading.Event(), threading.Event()

    def hold_the_callers_lock():
        try:
            with transaction.atomic():
                reservation_lock_caller(vendor=vendor, phone_number="+14805550100")
                locked.set()
                done.wait(timeout=10)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_the_callers_lock)
    holder.start()
    try:
        assert locked.wait(timeout=10)
        left = services._reserve_in_one_statement(
            vendor, read_ping_fields(ping_payload("+14805550100")), str(uuid.uuid4()), None
        )
        other = services._reserve_in_one_statement(
            vendor, read_ping_fields(ping_payload("+14805550101")), str(uuid.uuid4()), None
        )
    finally:
        done.set()
        holder.join(timeout=10)

    assert left is None
    assert other is not None and other.agent_available is True
    assert list(CallRecord.objects.values_list("phone_number", flat=True)) == ["+14805550101"]
    assert list(Reservation.objects.values_list("phone_number", flat=True)) == ["+14805550101"]


# --- Policies: the statement and the ORM path decide alike ---------------------------------------


def assert_both_paths_refuse(payload: dict, now, reason: str, retry=None) -> dict:
    (fast_answer, fast_rows), (orm_answer, orm_rows) = run_both_paths(payload, now)

    assert fast_answer is not None
    assert (fast_answer.outcome, fast_answer.reason) == ("refused", reason)
    assert fast_answer.retry_after_seconds == retry
    assert fast_answer == orm_answer
    assert fast_rows == orm_rows
    record = fast_rows["records"][-1]
    assert (record["outcome"], record["reason"], record["agent_count"]) == ("refused", reason, None)
    assert fast_rows["records_with_a_reservation"][-1] is False
    return fast_rows


def test_a_do_not_call_refusal_is_stored_as_the_transactional_path_stores_it():
    DoNotCallNumber.objects.create(number="+14805550100")

    rows = assert_both_paths_refuse(ping_payload(), timezone.now(), "do_not_call")

    assert rows["reservations"] == [] and all(a["held_until"] is None for a in rows["agents"])


def test_a_consent_refusal_and_the_evidence_are_stored_alike():
    Vendor.objects.filter(name="Demo Vendor").update(consent_required=True)

    assert_both_paths_refuse(
        ping_payload(xxTrustedFormCertUrl="https://cert.trustedform.com/nope"),
        timezone.now(),
        "consent_missing",
    )
    (fast_answer, fast_rows), (orm_answer, orm_rows) = run_both_paths(
        ping_payload(jornaya_leadid="A1B2C3D4-E5F6-4711-8899-AABBCCDDEEFF"), timezone.now()
    )
    assert fast_answer.agent_available is True and fast_answer == orm_answer
    assert fast_rows == orm_rows
    assert fast_rows["records"][0]["jornaya_leadid"] == "A1B2C3D4-E5F6-4711-8899-AABBCCDDEEFF"


def test_a_duplicate_refusal_is_decided_alike():
    vendor = Vendor.objects.get(name="Demo Vendor")
    Vendor.objects.filter(pk=vendor.pk).update(duplicate_window_days=3)
    now = timezone.now()
    CallRecordFactory(
        vendor=vendor, phone_number="+14805550100", outcome="completed",
        connected_at=now - timedelta(days=2),
    )  # fmt: skip

    assert_both_paths_refuse(ping_payload(), now, "duplicate_caller")


def test_a_closed_refusal_is_decided_alike():
    now = timezone.now()
    # Open on no day but the one after tomorrow: closed now.
    OpeningHours.objects.create(
        weekday=(now + timedelta(days=2)).weekday(), opens=datetime_time(0), closes=datetime_time(0)
    )

    (fast_answer, _), _ = run_both_paths(ping_payload(), now)
    assert fast_answer.reason == "closed" and fast_answer.retry_after_seconds > 3600
    assert_both_paths_refuse(ping_payload(), now, "closed", fast_answer.retry_after_seconds)


def test_caps_are_counted_and_decided_alike():
    vendor = Vendor.objects.get(name="Demo Vendor")
    VendorCap.objects.create(vendor=vendor, most_per_hour=2)
    VendorCap.objects.create(vendor=vendor, state="AZ", most_at_once=1)
    now = timezone.now().replace(minute=30, second=0, microsecond=0)

    # Reserved, and counted in the hour and the day for all states (AZ has no window cap).
    (fast_answer, fast_rows), (orm_answer, orm_rows) = run_both_paths(ping_payload(), now)
    assert fast_answer.agent_available is True and fast_answer == orm_answer
    assert fast_rows == orm_rows
    assert sorted((c["state"], c["period"], c["reservations"]) for c in fast_rows["counts"]) == [
        ("", "day", 1), ("", "hour", 1)
    ]  # fmt: skip

    vendor.policies = vendor_policies_load(vendor)

    def reserve(phone: str, at):
        fields = read_ping_fields(ping_payload(phone))
        answer = services._reserve_in_one_statement(vendor, fields, str(uuid.uuid4()), at)
        assert answer is not None and answer.agent_available is True

    reserve("+14805550109", now)
    # One live hold in AZ: the state's concurrency cap, retried when that hold ends.
    assert_both_paths_refuse(ping_payload(), now + timedelta(seconds=20), "concurrency_cap", 40)
    reserve("+14805550108", now + timedelta(seconds=70))
    # Two this hour, the last hold ended: the vendor's hourly cap, until the hour is over.
    assert_both_paths_refuse(ping_payload(), now + timedelta(seconds=140), "hourly_cap", 1660)


def test_no_agent_and_its_retry_hint_are_decided_alike():
    now = timezone.now()
    az_agents = list(Agent.objects.filter(licenses__state="AZ").order_by("id"))
    Agent.objects.filter(pk=az_agents[0].pk).update(held_until=now + timedelta(seconds=30))
    Agent.objects.filter(pk=az_agents[1].pk).update(held_until=now + timedelta(seconds=12))
    Agent.objects.filter(pk=az_agents[2].pk).update(status=Agent.Status.OFFLINE)

    (fast_answer, fast_rows), (orm_answer, orm_rows) = run_both_paths(ping_payload(), now)

    assert (fast_answer.reason, fast_answer.retry_after_seconds) == ("no_agent", 12)
    assert fast_answer == orm_answer
    assert fast_rows == orm_rows
    assert fast_rows["records"][0]["reason"] == "no_agent"


@pytest.mark.django_db(transaction=True)
def test_every_policy_on_still_costs_a_ping_one_statement(ping):
    vendor = Vendor.objects.get(name="Demo Vendor")
    Vendor.objects.filter(pk=vendor.pk).update(consent_required=True, duplicate_window_days=30)
    vendor.refresh_from_db()
    vendor.save()  # clears the cached key, as the admin's save does
    for weekday in range(7):
        OpeningHours.objects.create(
            weekday=weekday, opens=datetime_time(0), closes=datetime_time(0)
        )
    VendorCap.objects.create(vendor=vendor, most_at_once=50, most_per_hour=1000, most_per_day=9999)
    VendorCap.objects.create(vendor=vendor, state="AZ", most_at_once=50)
    consent = {"jornaya_leadid": "A1B2C3D4-E5F6-4711-8899-AABBCCDDEEFF"}
    ping(ping_payload("+14805550100", **consent))  # fills the key cache

    with CaptureQueriesContext(connection) as queries:
        answer = ping(ping_payload("+14805550101", **consent))
        DoNotCallNumber.objects.create(number="+14805550102")
        refused = ping(ping_payload("+14805550102", **consent))

    assert answer.json()["data"]["agentAvailable"] is True
    assert refused.json()["data"]["reason"] == "do_not_call"
    assert len(queries) == 3  # each ping one statement; the insert between them
    assert "ping_cap_refusal" in queries[0]["sql"]
