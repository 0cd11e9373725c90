"""The lifecycle of call records after the ping: a reservation nobody called expires (or was
released), a call that arrived completes; each end settles the record (calls.settlement)."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction

from calls.models import CallRecord
from calls.settlement.billing import call_record_decide, settled_without_call
from routing.models import Reservation
from routing.services import reservation_expire, reservation_expire_due

# A reservation that ended without its call: its TTL ran out (the record says expired), or staff
# or the agent going offline released it (the record says released).
ENDED_WITHOUT_CALL = {
    Reservation.Status.EXPIRED: CallRecord.Outcome.EXPIRED,
    Reservation.Status.RELEASED: CallRecord.Outcome.RELEASED,
}


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
    records = _end_call_records(CallRecord.objects.filter(reservation_id=reservation_id), now)
    return Expiry(reservations=int(expired), call_records=records)


@transaction.atomic
def call_records_expire_due(*, now: datetime) -> Expiry:
    """The sweep: expire every reservation past its TTL, and every call record whose reservation
    ended without a call, including those a ping already marked expired or staff released; and
    sandbox holds past their TTL (calls.ping.sandbox), which hold no reservation."""
    expired = reservation_expire_due(now=now)
    records = _end_call_records(CallRecord.objects.all(), now)
    records += _expire_sandbox_holds(now)
    return Expiry(reservations=expired, call_records=records)


@transaction.atomic
def call_records_end_released(*, reservation_ids: list[int], now: datetime) -> int:
    """The records of reservations just released: released, and settled (no call), at once."""
    return _end_call_records(CallRecord.objects.filter(reservation_id__in=reservation_ids), now)


def _end_call_records(records, now: datetime) -> int:
    # Settled as "no call" in the same update (a late call reopens them).
    ended = 0
    for reservation_status, outcome in ENDED_WITHOUT_CALL.items():
        ended += records.filter(
            outcome=CallRecord.Outcome.RESERVED, reservation__status=reservation_status
        ).update(outcome=outcome, **settled_without_call(now=now))
    return ended


def call_record_complete(
    *, record: CallRecord, now: datetime, duration: int | None, status: str
) -> None:
    """The record's call ended: completed with its talk time and the carrier's last word, and
    settled (billable or not, and its payout) in the same save. Call in the call's transaction."""
    record.outcome = CallRecord.Outcome.COMPLETED
    record.ended_at = record.ended_at or now
    if duration is not None:
        record.duration_seconds = duration
    record.call_status = status
    settled = call_record_decide(record, now=now)
    record.save(update_fields=["outcome", "ended_at", "duration_seconds", "call_status", *settled])


def call_record_talk_corrected(*, record: CallRecord, now: datetime, fields: list[str]) -> None:
    """The carrier's word on a completed record's talk came after it ended (a Dial action
    after the caller's call): save `fields`, and settle the record again on the corrected facts,
    by the rule that settled it."""
    settled = call_record_decide(record, now=now)
    record.save(update_fields=[*fields, *settled])


def on_reservation_released(sender, *, reservation_id: int, now: datetime, **kwargs) -> None:
    """routing.signals.reservation_released: the record says released, at once."""
    call_records_end_released(reservation_ids=[reservation_id], now=now)


def _expire_sandbox_holds(now: datetime) -> int:
    # By the TTL sandbox holds are given now (callrecord_outcome_received finds them): a hold
    # made before SANDBOX_TTL_SECONDS changed ends by the new one.
    ended_before = now - timedelta(seconds=settings.SANDBOX_TTL_SECONDS)
    return (
        CallRecord.objects.sandbox_traffic()
        .filter(outcome=CallRecord.Outcome.RESERVED, received_at__lte=ended_before)
        .update(
            outcome=CallRecord.Outcome.EXPIRED,
            **{
                **settled_without_call(now=now),
                "not_billable_reason": CallRecord.NotBillableReason.SANDBOX,
            },
        )
    )
