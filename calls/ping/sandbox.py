"""Sandbox keys' pings: every answer of the contract, forced by the caller's number, none held.

A vendor integrating against us tests each answer with a sandbox key (vendors.VendorKey.sandbox)
without taking an agent from a real caller. Its pings pass the same key, rate-limit, phone,
state, active and authorized checks as a live key's; then the last four digits of the caller's
number decide the answer (docs/vendor-guide.md, "Sandbox keys"), in Python, before any database
hold: no agent, transfer number or reservation row is read or written. Each ping writes one call
record flagged `sandbox`, which reports, exports and the API leave out unless asked for.

A sandbox hold is its call record: outcome reserved, received_at and ttl_seconds. A second ping
for the same caller from the same vendor while that lasts is a repeat, as a live one is; beat's
sweep then marks it expired (calls.lifecycle), as a live hold nobody called.
"""

import logging
import math
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from calls.models import CallRecord
from calls.ping.request import PingFields
from calls.ping.service import PingAnswer, ping_record_values
from config.errors import MESSAGE_UNEXPECTED, ApplicationError
from routing.allocation import reservation_lock_caller
from routing.models import UnavailableReason
from vendors.models import Vendor

logger = logging.getLogger(__name__)

# The caller's last four digits and the unavailable answer they force, with its
# retryAfterSeconds: fixed, plausible values (None: no later ping can succeed).
SANDBOX_UNAVAILABLE: dict[str, tuple[str, int | None]] = {
    "0101": (UnavailableReason.NO_AGENT, 30),
    "0102": (UnavailableReason.CONCURRENCY_CAP, 60),
    "0103": (UnavailableReason.HOURLY_CAP, 1800),
    "0104": (UnavailableReason.DAILY_CAP, 43_200),
    "0105": (UnavailableReason.CLOSED, 28_800),
    "0106": (UnavailableReason.DUPLICATE_CALLER, None),
    "0107": (UnavailableReason.DO_NOT_CALL, None),
    "0108": (UnavailableReason.CONSENT_MISSING, None),
}
# The caller's last four digits that force the 500 answer.
SANDBOX_SERVER_ERROR = "0199"
# The longest a sandbox hold can last (SANDBOX_TTL_SECONDS' maximum): how far back a repeat looks.
_LONGEST_HOLD = timedelta(seconds=86_400)


class SandboxForcedError(ApplicationError):
    """The 500 answer a sandbox caller ending in 0199 asks for: the contract's envelope and
    message, through the same error handler as a real one, but no fault of ours, so it is logged
    as a sandbox-forced error (INFO, no trace) and counted in the sandbox's metrics."""

    status = 500
    message = MESSAGE_UNEXPECTED


def sandbox_ping(
    *,
    vendor: Vendor,
    fields: PingFields,
    request_id: str,
    now: datetime | None = None,
    warnings: tuple[str, ...] = (),
) -> PingAnswer:
    """The answer the caller's number forces, recorded as a sandbox call record."""
    last_four = fields.phone_number[-4:]
    if last_four == SANDBOX_SERVER_ERROR:
        logger.info(
            "Sandbox-forced error: %s pinged with a sandbox key for a caller ending in %s, "
            "answered 500 as the sandbox promises (no fault; nothing recorded)",
            vendor,
            SANDBOX_SERVER_ERROR,
        )
        raise SandboxForcedError()
    if last_four in SANDBOX_UNAVAILABLE:
        reason, retry_after_seconds = SANDBOX_UNAVAILABLE[last_four]
        now = now or timezone.now()
        no_agent = reason == UnavailableReason.NO_AGENT
        _record(
            vendor,
            fields,
            request_id,
            now,
            outcome=CallRecord.Outcome.NO_AGENT if no_agent else CallRecord.Outcome.REFUSED,
            reason=reason,
            agent_count=0 if no_agent else None,
        )
        return PingAnswer(
            outcome=CallRecord.Outcome.NO_AGENT if no_agent else CallRecord.Outcome.REFUSED,
            timestamp=now,
            reason=reason,
            retry_after_seconds=retry_after_seconds,
            warnings=warnings,
            sandbox=True,
        )
    return _hold(vendor, fields, request_id, now, warnings)


def _hold(
    vendor: Vendor,
    fields: PingFields,
    request_id: str,
    now: datetime | None,
    warnings: tuple[str, ...],
) -> PingAnswer:
    """Available: a new sandbox hold, or the live one's repeat."""
    transfer_target = settings.SANDBOX_TRANSFER_NUMBER
    agent_count = settings.SANDBOX_AGENT_COUNT
    with transaction.atomic():
        # The live pings' caller lock (an advisory lock, no row): two pings for one caller at
        # once give one hold and one repeat, as live ones do. Decided by the database's clock.
        clock = reservation_lock_caller(vendor=vendor, phone_number=fields.phone_number)
        now = now or clock
        first = _live_hold(vendor, fields.phone_number, now)
        if first is not None:
            ttl_left = _seconds_left(first, now)
            _record(
                vendor,
                fields,
                request_id,
                now,
                outcome=CallRecord.Outcome.REPEAT,
                repeat_of=first,
                transfer_target=first.transfer_target,
                agent_count=first.agent_count,
                ttl_seconds=ttl_left,
            )
            return PingAnswer(
                outcome=CallRecord.Outcome.REPEAT,
                timestamp=now,
                transfer_target=first.transfer_target,
                ttl_seconds=ttl_left,
                agent_count=first.agent_count,
                warnings=warnings,
                sandbox=True,
            )
        ttl_seconds = settings.SANDBOX_TTL_SECONDS
        _record(
            vendor,
            fields,
            request_id,
            now,
            outcome=CallRecord.Outcome.RESERVED,
            transfer_target=transfer_target,
            agent_count=agent_count,
            ttl_seconds=ttl_seconds,
        )
    return PingAnswer(
        outcome=CallRecord.Outcome.RESERVED,
        timestamp=now,
        transfer_target=transfer_target,
        ttl_seconds=ttl_seconds,
        agent_count=agent_count,
        warnings=warnings,
        sandbox=True,
    )


def _live_hold(vendor: Vendor, phone_number: str, now: datetime) -> CallRecord | None:
    """The vendor's sandbox hold for the caller that lasts past `now`, if any."""
    latest = (
        CallRecord.objects.sandbox_traffic()
        .filter(
            vendor_id=vendor.pk,
            phone_number=phone_number,
            outcome=CallRecord.Outcome.RESERVED,
            received_at__gt=now - _LONGEST_HOLD,
            received_at__lte=now,
        )
        .order_by("-received_at")
        .first()
    )
    if latest is None or _expires_at(latest) <= now:
        return None
    return latest


def _expires_at(hold: CallRecord) -> datetime:
    return hold.received_at + timedelta(seconds=hold.ttl_seconds or 0)


def _seconds_left(hold: CallRecord, now: datetime) -> int:
    """As a live repeat: rounded up, at least 1, at most the hold's TTL."""
    remaining = (_expires_at(hold) - now).total_seconds()
    return max(1, min(hold.ttl_seconds or 1, math.ceil(remaining)))


def _record(vendor: Vendor, fields: PingFields, request_id: str, now: datetime, **values) -> None:
    CallRecord.objects.create(
        **ping_record_values(vendor, fields, request_id, now), sandbox=True, **values
    )
