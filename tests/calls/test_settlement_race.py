"""Two calls of one vendor's caller that end at the same moment bill once: the second decision
waits for the first to commit, then reads it as the duplicate it is. Real PostgreSQL
transactions in two threads; the first holds its decision open while the second decides."""

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection, transaction

from calls.lifecycle import call_record_complete
from calls.models import CallRecord
from calls.settlement.models import BillingRule
from routing.models import Reservation
from tests.factories import CallRecordFactory, ReservationFactory, VendorFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

PINGED = datetime(2026, 1, 2, tzinfo=UTC)


def connected(vendor, *, at: datetime) -> CallRecord:
    """A record of the caller +1 480 555 0100 whose call arrived and is still running."""
    reservation = ReservationFactory(
        vendor=vendor, phone_number="+14805550100", created_at=at,
        status=Reservation.Status.CONNECTED,
    )  # fmt: skip
    return CallRecordFactory.create(
        vendor=vendor, phone_number="+14805550100", outcome=CallRecord.Outcome.CONNECTED,
        reservation=reservation, received_at=at, connected_at=at + timedelta(seconds=20),
        call_status="answered",
    )  # fmt: skip


def test_two_calls_of_one_caller_ending_at_the_same_moment_bill_once():
    vendor = VendorFactory(name="Acme Leads", authorized_states=["AZ"])
    BillingRule.objects.create(vendor=vendor, effective_from=PINGED - timedelta(days=1),
                               payout=Decimal("25.00"), duplicate_window_days=30)  # fmt: skip
    first = connected(vendor, at=PINGED)
    second = connected(vendor, at=PINGED + timedelta(hours=1))  # inside the first's window
    ended = PINGED + timedelta(hours=2)
    first_decided, first_may_commit = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def end(record_id: int, *, hold_open: bool) -> None:
        try:
            with transaction.atomic():
                record = CallRecord.objects.select_for_update().get(pk=record_id)
                call_record_complete(record=record, now=ended, duration=200, status="completed")
                if hold_open:
                    first_decided.set()
                    first_may_commit.wait(timeout=10)
        except BaseException as error:  # a thread's failure, asserted below
            failures.append(error)
        finally:
            connection.close()

    first_call = threading.Thread(target=end, args=(first.pk,), kwargs={"hold_open": True})
    second_call = threading.Thread(target=end, args=(second.pk,), kwargs={"hold_open": False})
    first_call.start()
    assert first_decided.wait(timeout=10)
    second_call.start()
    second_call.join(timeout=1)  # decides now, unless it waits for the first
    first_may_commit.set()
    first_call.join(timeout=10)
    second_call.join(timeout=10)

    assert not failures
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.billable, first.payout) == ("yes", Decimal("25.00"))
    assert (second.billable, second.not_billable_reason) == ("no", "duplicate")
