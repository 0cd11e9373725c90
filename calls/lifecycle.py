"""The lifecycle of call records after the ping: a reservation nobody called expires."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction

from calls.models import CallRecord
from routing.models import Reservation
from routing.services import reservation_expire, reservation_expire_due

# A reservation that ended without its call: its TTL ran out, or staff or the agent going offline
# released it. Its call record then says expired.
ENDED_WITHOUT_CALL = (Reservation.Status.EXPIRED, Reservation.Status.RELEASED)


@dataclass(frozen=True)
class Expiry:
    reservations: int
    call_records: int


@transaction.atomic
def call_record_expire(*, reservation_id: int, now: datetime) -> Expiry:
    """Expire one reservation past its TTL and its call record, in one transaction.

    Idempotent: a second run, a late run, or a run after the call arrived changes nothing.
    """
    expired = reservation_expire(reservation_id=reservation_id, now=now)
    records = _expire_call_records(CallRecord.objects.filter(reservation_id=reservation_id))
    return Expiry(reservations=int(expired), call_records=records)


@transaction.atomic
def call_records_expire_due(*, now: datetime) -> Expiry:
    """The sweep: expire every reservation past its TTL, and every call record whose reservation
    ended without a call, including those a ping already marked expired or staff released; and
    sandbox holds past their TTL (calls.ping.sandbox), which hold no reservation."""
    expired = reservation_expire_due(now=now)
    records = _expire_call_records(CallRecord.objects.all())
    records += _expire_sandbox_holds(now)
    return Expiry(reservations=expired, call_records=records)


def _expire_sandbox_holds(now: datetime) -> int:
    # By the TTL sandbox holds are given now (callrecord_outcome_received finds them): a hold
    # made before SANDBOX_TTL_SECONDS changed ends by the new one.
    ended_before = now - timedelta(seconds=settings.SANDBOX_TTL_SECONDS)
    return (
        CallRecord.objects.sandbox_traffic()
        .filter(outcome=CallRecord.Outcome.RESERVED, received_at__lte=ended_before)
        .update(outcome=CallRecord.Outcome.EXPIRED)
    )


def _expire_call_records(records) -> int:
    return records.filter(
        outcome=CallRecord.Outcome.RESERVED, reservation__status__in=ENDED_WITHOUT_CALL
    ).update(outcome=CallRecord.Outcome.EXPIRED)
