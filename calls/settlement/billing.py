"""Deciding whether a call record is billable, and what it pays.

A record is decided once its end is known: at the ping for a ping that reserved nothing, when its
reservation ends without a call (expired or released), and when its call ends. The rule is the
vendor's rule in effect when the ping was received, and the record keeps it: a later rule never
rewrites a settled record. A call arriving late after its record was settled as "no call" reopens
it (pending again) until that call ends.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import QuerySet

from calls.models import CallRecord, CallStatus, InboundCall
from calls.settlement.models import BillingRule
from config.database import transaction_lock

Billable = CallRecord.Billable
Reason = CallRecord.NotBillableReason
Outcome = CallRecord.Outcome

ZERO = Decimal("0.00")

# The records a ping writes that reserve nothing: decided at once, with the outcome's reason.
# "refused" is the policy refusal's outcome (its reason code is on the record itself).
REASON_AT_PING: dict[str, str] = {
    Outcome.REPEAT: Reason.REPEAT,
    Outcome.NO_AGENT: Reason.NO_AGENT,
    Outcome.REJECTED: Reason.REJECTED,
    Outcome.REFUSED: Reason.REFUSED,
}

# The fields a decision writes.
DECISION_FIELDS = [
    "billable",
    "not_billable_reason",
    "payout",
    "payout_currency",
    "billing_rule",
    "billing_decided_at",
]


def billing_rule_in_effect(*, vendor_id: int, at: datetime) -> BillingRule | None:
    """The vendor's rule with the latest `effective_from` at or before `at`."""
    return (
        BillingRule.objects.filter(vendor_id=vendor_id, effective_from__lte=at)
        .order_by("-effective_from")
        .first()
    )


def billing_at_ping(*, outcome: str, now: datetime) -> dict:
    """The settlement fields of a record the ping writes: pending for a reservation (its call
    may come), not billable with the outcome's reason for anything else."""
    reason = REASON_AT_PING.get(outcome)
    if reason is None:
        return {}
    return _not_billable(reason, now)


def _not_billable(reason: str, now: datetime, rule: BillingRule | None = None) -> dict:
    return {
        "billable": Billable.NO,
        "not_billable_reason": reason,
        "payout": ZERO,
        "payout_currency": rule.currency if rule else "",
        "billing_rule": rule,
        "billing_decided_at": now,
    }


def settled_without_call(*, now: datetime) -> dict:
    """The fields of a record whose reservation ended without its call (expired or released):
    not billable, no call. For the update that ends such records, so they are settled in it."""
    return {
        "billable": Billable.NO,
        "not_billable_reason": Reason.NO_CALL,
        "payout": ZERO,
        "payout_currency": "",
        "billing_rule": None,
        "billing_decided_at": now,
    }


def records_for_settlement(records: QuerySet[CallRecord]) -> QuerySet[CallRecord]:
    """Records that count in statements and scorecards: sandbox records never do."""
    return records.filter(sandbox=False)  # CallRecord.objects.live_traffic()'s rule


def call_record_reopen(record: CallRecord) -> list[str]:
    """A call arrived for a record settled as "no call" (it came late): pending again, to be
    decided when that call ends. Sets the fields on `record`; returns them for its save."""
    if record.billable == Billable.PENDING:
        return []
    record.billable = Billable.PENDING
    record.not_billable_reason = ""
    record.payout = None
    record.payout_currency = ""
    record.billing_rule = None
    record.billing_decided_at = None
    return list(DECISION_FIELDS)


def call_record_decide(record: CallRecord, *, now: datetime) -> list[str]:
    """Decide a completed record: sets its settlement fields, returns them for its save.

    Call in the transaction that completes the record. The order of the checks is the order the
    reasons are given in: the first that applies is the record's reason.
    """
    decision = _decision(record, now)
    for field, value in decision.items():
        setattr(record, field, value)
    return list(DECISION_FIELDS)


def _decision(record: CallRecord, now: datetime) -> dict:
    # Sandbox records are never billable.
    if record.sandbox:
        return _not_billable(Reason.SANDBOX, now)
    if record.outcome != Outcome.COMPLETED:
        reason = REASON_AT_PING.get(record.outcome, Reason.NO_CALL)
        return _not_billable(reason, now)
    # Settled again (its talk time corrected): by the rule that settled it, whatever came since.
    rule = record.billing_rule or billing_rule_in_effect(
        vendor_id=record.vendor_id, at=record.received_at
    )
    if not _answered(record):
        return _not_billable(Reason.NOT_ANSWERED, now, rule)
    if record.reservation_id is None or _late_and_not_the_caller(record):
        return _not_billable(Reason.UNMATCHED, now, rule)
    if rule is None:
        return _not_billable(Reason.NO_RULE, now)
    if (record.duration_seconds or 0) < rule.min_talk_seconds:
        return _not_billable(Reason.UNDER_MINIMUM, now, rule)
    if _billed_within_window(record, rule):
        return _not_billable(Reason.DUPLICATE, now, rule)
    return {
        "billable": Billable.YES,
        "not_billable_reason": "",
        "payout": rule.payout,
        "payout_currency": rule.currency,
        "billing_rule": rule,
        "billing_decided_at": now,
    }


def _answered(record: CallRecord) -> bool:
    """An agent talked with the caller: the call completed with talk time (or talk time unknown
    but the carrier says it was completed after an answer)."""
    if record.duration_seconds == 0:
        return False
    return record.call_status == CallStatus.COMPLETED


def _late_and_not_the_caller(record: CallRecord) -> bool:
    """A call that arrived after its hold ended is tied to the record by the number it dialled
    alone; a caller id that names someone else than the pinged caller says it is not this
    vendor's transfer. (A withheld caller id does not count against it.)"""
    if record.caller_id_matches is not False:
        return False
    return record.inbound_calls.filter(match=InboundCall.Match.LATE).exists()


def _billed_within_window(record: CallRecord, rule: BillingRule) -> bool:
    """The same vendor was already billed for this caller within the rule's window before this
    record's ping (a window of 0 days: never a duplicate)."""
    if not rule.duplicate_window_days:
        return False
    _lock_callers_billing(record)
    window_start = record.received_at - timedelta(days=rule.duplicate_window_days)
    return (
        CallRecord.objects.filter(
            vendor_id=record.vendor_id,
            phone_number=record.phone_number,
            billable=Billable.YES,
            received_at__gte=window_start,
            received_at__lte=record.received_at,
        )
        .exclude(pk=record.pk)
        .exists()
    )


def _lock_callers_billing(record: CallRecord) -> None:
    """No other decision for this vendor's caller until the deciding transaction ends: two of
    its calls ending at once would each find the other not yet billed, and both would bill.
    The next one waits, then reads what the first committed (PostgreSQL; SQLite serializes
    writers already). A lock of its own, not the pings' caller lock: no ping waits for billing."""
    transaction_lock(f"billing:{record.vendor_id}:{record.phone_number}")


# Outcomes whose record's end is known, and the reason they cannot bill (completed is decided
# call by call).
_ENDED_WITHOUT_A_CALL = {
    **REASON_AT_PING,
    Outcome.EXPIRED: Reason.NO_CALL,
    Outcome.RELEASED: Reason.NO_CALL,
}


def call_records_settle_pending(*, now: datetime, batch_size: int = 1000) -> int:
    """Settle every record still pending whose end is known: records written before settlement
    existed, or left so by an interruption. Idempotent; in batches, each its own transaction.
    Returns how many were settled."""
    from django.db import transaction

    settled = 0
    for outcome, reason in _ENDED_WITHOUT_A_CALL.items():
        while True:
            with transaction.atomic():
                ids = list(
                    CallRecord.objects.filter(billable=Billable.PENDING, outcome=outcome)
                    .order_by()
                    .values_list("pk", flat=True)[:batch_size]
                )
                if not ids:
                    break
                settled += CallRecord.objects.filter(pk__in=ids, billable=Billable.PENDING).update(
                    **_not_billable(reason, now)
                )
    while True:
        with transaction.atomic():
            batch = list(
                CallRecord.objects.select_for_update()
                .filter(billable=Billable.PENDING, outcome=Outcome.COMPLETED)
                .order_by("pk")[:batch_size]
            )
            if not batch:
                break
            for record in batch:
                record.save(update_fields=call_record_decide(record, now=now))
            settled += len(batch)
    return settled
