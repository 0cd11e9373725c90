"""Which calls are billable and what they pay, decided when each record's end is known."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db.models import ProtectedError
from telephony_support import record_of

from calls.lifecycle import call_record_complete, call_records_expire_due
from calls.models import CallRecord
from calls.settlement.models import BillingRule
from routing.models import Reservation
from tests.conftest import AZ_PING
from tests.factories import (
    CallRecordFactory,
    ReservationFactory,
    VendorFactory,
    floor_build,
    vendor_key,
)

JAN_1 = datetime(2026, 1, 1, tzinfo=UTC)
FEB_1 = datetime(2026, 2, 1, tzinfo=UTC)


@pytest.fixture
def vendor(db):
    return VendorFactory(name="Acme Leads", authorized_states=["AZ"])


@pytest.fixture
def rule(vendor):
    return BillingRule.objects.create(vendor=vendor, effective_from=JAN_1, payout=Decimal("25.00"))


def _connected(vendor, *, at: datetime, phone: str = "+14805550100", **values) -> CallRecord:
    """A record whose reservation's call arrived at `at`, still running."""
    reservation = ReservationFactory(
        vendor=vendor, phone_number=phone, created_at=at, status=Reservation.Status.CONNECTED
    )
    return CallRecordFactory.create(
        vendor=vendor,
        phone_number=phone,
        outcome=CallRecord.Outcome.CONNECTED,
        reservation=reservation,
        received_at=at,
        connected_at=at + timedelta(seconds=20),
        call_status="answered",
        **values,
    )


def _talk(record: CallRecord, seconds: int, status: str = "completed") -> CallRecord:
    end = record.received_at + timedelta(seconds=30 + seconds)
    call_record_complete(record=record, now=end, duration=seconds, status=status)
    record.refresh_from_db()
    return record


def _settled(record: CallRecord) -> tuple:
    return (record.billable, record.not_billable_reason, record.payout, record.payout_currency)


def test_a_call_of_89_seconds_is_under_the_minimum_and_one_of_90_is_billable(vendor, rule):
    short = _talk(_connected(vendor, at=JAN_1 + timedelta(days=3), phone="+14805550101"), 89)
    enough = _talk(_connected(vendor, at=JAN_1 + timedelta(days=3), phone="+14805550102"), 90)

    assert _settled(short) == ("no", "under_minimum", Decimal("0.00"), "USD")
    assert _settled(enough) == ("yes", "", Decimal("25.00"), "USD")
    assert enough.billing_rule == rule
    assert enough.billing_decided_at == enough.ended_at


def test_the_rules_own_minimum_talk_time_decides(vendor):
    BillingRule.objects.create(
        vendor=vendor, effective_from=JAN_1, payout=Decimal("40.00"), min_talk_seconds=120
    )
    record = _talk(_connected(vendor, at=JAN_1 + timedelta(days=1)), 119)
    assert _settled(record)[:2] == ("no", "under_minimum")


def test_a_caller_billed_within_the_window_is_a_duplicate_until_its_last_moment(vendor, rule):
    first = _talk(_connected(vendor, at=JAN_1 + timedelta(days=1)), 200)
    assert first.billable == "yes"

    last_minute = first.received_at + timedelta(days=rule.duplicate_window_days, minutes=-1)
    again = _talk(_connected(vendor, at=last_minute), 200)
    after = first.received_at + timedelta(days=rule.duplicate_window_days, minutes=1)
    later = _talk(_connected(vendor, at=after), 200)

    assert _settled(again) == ("no", "duplicate", Decimal("0.00"), "USD")
    assert _settled(later)[:3] == ("yes", "", Decimal("25.00"))


def test_a_window_of_0_days_and_another_vendors_billing_are_never_duplicates(vendor):
    BillingRule.objects.create(
        vendor=vendor, effective_from=JAN_1, payout=Decimal("10.00"), duplicate_window_days=0
    )
    other = VendorFactory(name="Other Leads")
    BillingRule.objects.create(vendor=other, effective_from=JAN_1, payout=Decimal("5.00"))
    at = JAN_1 + timedelta(days=2)

    assert _talk(_connected(other, at=at), 100).billable == "yes"
    assert _talk(_connected(vendor, at=at + timedelta(hours=1)), 100).billable == "yes"
    assert _talk(_connected(vendor, at=at + timedelta(hours=2)), 100).billable == "yes"


def test_the_rule_in_effect_when_the_ping_was_received_decides(vendor, rule):
    BillingRule.objects.create(
        vendor=vendor, effective_from=FEB_1, payout=Decimal("30.00"), currency="USD"
    )
    # Pinged a minute before February, its call ended in February: January's rule.
    before = _talk(_connected(vendor, at=FEB_1 - timedelta(minutes=1), phone="+14805550111"), 300)
    on = _talk(_connected(vendor, at=FEB_1, phone="+14805550112"), 300)

    assert (before.payout, before.billing_rule_id) == (Decimal("25.00"), rule.pk)
    assert on.payout == Decimal("30.00")


def test_a_new_rule_never_rewrites_a_settled_record(vendor, rule):
    settled = _talk(_connected(vendor, at=JAN_1 + timedelta(days=5)), 120)
    assert settled.payout == Decimal("25.00")

    # A new rule, even one dated before the record, and a later call.
    BillingRule.objects.create(
        vendor=vendor, effective_from=JAN_1 + timedelta(days=1), payout=Decimal("99.00")
    )
    call_records_expire_due(now=JAN_1 + timedelta(days=6))

    settled.refresh_from_db()
    assert _settled(settled) == ("yes", "", Decimal("25.00"), "USD")
    assert settled.billing_rule_id == rule.pk
    with pytest.raises(ProtectedError):
        rule.delete()


def test_a_rule_that_settled_a_call_cannot_be_edited_in_the_admin(vendor, rule, operations_client):
    _talk(_connected(vendor, at=JAN_1 + timedelta(days=5)), 120)

    page = operations_client.get(f"/admin/calls/billingrule/{rule.pk}/change/").content.decode()
    operations_client.post(
        f"/admin/calls/billingrule/{rule.pk}/change/",
        {"vendor": vendor.pk, "effective_from_0": "2026-01-01", "effective_from_1": "00:00:00",
         "min_talk_seconds": 10, "payout": "99.00", "currency": "USD",
         "duplicate_window_days": 1},
    )  # fmt: skip

    assert 'name="payout"' not in page
    rule.refresh_from_db()
    assert (rule.payout, rule.min_talk_seconds) == (Decimal("25.00"), 90)


def test_without_a_rule_in_effect_a_call_is_not_billable(vendor):
    BillingRule.objects.create(vendor=vendor, effective_from=FEB_1, payout=Decimal("30.00"))
    record = _talk(_connected(vendor, at=JAN_1 + timedelta(days=3)), 300)
    assert _settled(record) == ("no", "no_rule", Decimal("0.00"), "")


def test_a_call_no_agent_answered_is_not_billable(vendor, rule):
    record = _talk(_connected(vendor, at=JAN_1 + timedelta(days=3)), 0, status="no-answer")
    assert _settled(record)[:2] == ("no", "not_answered")


def test_the_carriers_late_word_on_the_talk_time_settles_the_record_again(
    vendor, rule, ping, carrier, floor_az
):
    first = ping(AZ_PING).json()["data"]
    carrier.voice(sid="CA950", to=first["transferTarget"])
    carrier.leg_status(parent="CA950", attempt=1, status="in-progress")
    carrier.call_status(sid="CA950", status="completed", duration=40)
    assert record_of(first).billable == "no"  # no talk time known yet

    carrier.dial_status(sid="CA950", attempt=1, status="completed", duration=95)

    record = record_of(first)
    assert (record.duration_seconds, record.billable, record.payout) == (
        95,
        "yes",
        Decimal("25.00"),
    )


@pytest.fixture
def floor_az(vendor, rule):
    """The vendor's key is the one AZ_PING sends; three AZ agents, three numbers."""
    vendor_key(vendor, key=AZ_PING["vendorKey"])
    return floor_build(agents={"AZ": 3}, numbers=3)


def test_pings_that_reserve_nothing_are_settled_at_once_and_an_unused_hold_when_it_ends(
    vendor, rule, ping, floor_az, settings
):
    settings.RESERVATION_TTL_SECONDS = 60
    reserved = ping(AZ_PING).json()["data"]
    repeat = ping(AZ_PING).json()["data"]
    for index in range(2):
        ping({**AZ_PING, "phoneNumber": f"+1480555010{index}"})
    none_left = ping({**AZ_PING, "phoneNumber": "+14805550109"}).json()["data"]
    assert none_left["agentAvailable"] is False

    assert record_of(reserved).billable == "pending"
    assert _settled(record_of(repeat))[:2] == ("no", "repeat")
    assert _settled(record_of(none_left))[:3] == ("no", "no_agent", Decimal("0.00"))

    record = record_of(reserved)
    call_records_expire_due(now=record.received_at + timedelta(seconds=61))
    assert (record_of(reserved).outcome, *_settled(record_of(reserved))[:2]) == (
        "expired",
        "no",
        "no_call",
    )


def test_records_from_before_settlement_are_settled_by_the_command(vendor, rule, capsys):
    from django.core.management import call_command

    at = JAN_1 + timedelta(days=2)
    old = [
        CallRecordFactory.create(vendor=vendor, outcome=outcome, received_at=at)
        for outcome in ("no_agent", "expired", "repeat")
    ]
    done = _connected(vendor, at=at, duration_seconds=200)
    CallRecord.objects.filter(pk=done.pk).update(
        outcome="completed", ended_at=at, call_status="completed"
    )
    running = _connected(vendor, at=at, phone="+14805550199")

    call_command("settle_call_records", "--batch-size", "2")
    call_command("settle_call_records")

    assert capsys.readouterr().out.splitlines() == [
        "Settled 4 call record(s).",
        "Settled 0 call record(s).",
    ]
    reasons = [CallRecord.objects.get(pk=record.pk).not_billable_reason for record in old]
    assert reasons == ["no_agent", "no_call", "repeat"]
    done.refresh_from_db()
    assert (done.billable, done.payout) == ("yes", Decimal("25.00"))
    running.refresh_from_db()
    assert running.billable == "pending"
