"""The ping, as the first event of a call: validate, reserve, and record what happened."""

import logging
from datetime import UTC, datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from calls.models import CallRecord
from calls.ping import PingFields, read_ping_fields
from config.errors import ApplicationError
from config.metrics import ping_outcome_note
from routing.models import Reservation
from routing.services import (
    reservation_create,
    reservation_find_live,
    reservation_lock_caller,
)
from vendors.models import Vendor
from vendors.services import vendor_key_authenticate

logger = logging.getLogger(__name__)

MESSAGE_INACTIVE = "Vendor is not active."


class VendorRefused(ApplicationError):
    status = 403


def format_timestamp(moment: datetime) -> str:
    """UTC, ISO-8601 with milliseconds and Z, as the guide shows."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def vendor_ping(*, payload: dict, request_id: str, now: datetime | None = None) -> dict:
    """Answer a ping (or a key validation) with the `data` of the contract's envelope."""
    now = now or timezone.now()
    vendor = vendor_key_authenticate(key=payload.get("vendorKey"), now=now)
    if "phoneNumber" not in payload:
        ping_outcome_note("key_validation")
        return {
            "vendorActive": vendor.is_active,
            "authorizedStates": vendor.authorized_state_list(),
            "requestId": request_id,
        }
    fields = read_ping_fields(payload)
    refusal = _refusal(vendor, fields.state)
    if refusal is not None:
        _record(vendor, fields, request_id, now, outcome=CallRecord.Outcome.REJECTED,
                rejected_reason=refusal)  # fmt: skip
        raise VendorRefused(refusal)
    return _reserve(vendor, fields, request_id, now)


def _refusal(vendor: Vendor, state: str) -> str | None:
    if not vendor.is_active:
        return MESSAGE_INACTIVE
    if not vendor.is_authorized_for(state):
        return f"Vendor is not authorized for state {state}."
    return None


def _reserve(vendor: Vendor, fields: PingFields, request_id: str, now: datetime) -> dict:
    ttl_seconds = settings.RESERVATION_TTL_SECONDS
    # Two pings for one caller can race: the loser's insert hits the one-live-hold-per-caller
    # index, and its second pass finds the winner's reservation and answers as a repeat.
    for attempt in (1, 2):
        try:
            with transaction.atomic():
                reservation_lock_caller(
                    vendor=vendor, phone_number=fields.phone_number, state=fields.state
                )
                live = reservation_find_live(
                    vendor=vendor, phone_number=fields.phone_number, state=fields.state, now=now
                )
                if live is not None:
                    return _answer_repeat(vendor, fields, request_id, now, live)
                allocation = reservation_create(
                    vendor=vendor,
                    phone_number=fields.phone_number,
                    state=fields.state,
                    ttl_seconds=ttl_seconds,
                    now=now,
                )
                reservation = allocation.reservation
                if reservation is None:
                    _record(vendor, fields, request_id, now, outcome=CallRecord.Outcome.NO_AGENT,
                            agent_count=0)  # fmt: skip
                    return _unavailable(request_id, now)
                _record(
                    vendor,
                    fields,
                    request_id,
                    now,
                    outcome=CallRecord.Outcome.RESERVED,
                    reservation=reservation,
                    agent_id=reservation.agent_id,
                    transfer_target=str(reservation.transfer_number.number),
                    agent_count=reservation.agent_count,
                    ttl_seconds=ttl_seconds,
                )
            _enqueue_expiry(reservation)
            return _available(reservation, ttl_seconds, request_id, now)
        except IntegrityError:
            if attempt == 2:
                raise
            logger.info("Concurrent ping for the same caller; answering as a repeat")
    raise AssertionError("unreachable")


def _answer_repeat(
    vendor: Vendor, fields: PingFields, request_id: str, now: datetime, live: Reservation
) -> dict:
    first = live.call_records.filter(repeat_of__isnull=True).order_by("received_at").first()
    ttl_left = live.seconds_left(now)
    _record(
        vendor,
        fields,
        request_id,
        now,
        outcome=CallRecord.Outcome.REPEAT,
        reservation=live,
        repeat_of=first,
        agent_id=live.agent_id,
        transfer_target=str(live.transfer_number.number),
        agent_count=live.agent_count,
        ttl_seconds=ttl_left,
    )
    return _available(live, ttl_left, request_id, now)


def _available(reservation: Reservation, ttl_seconds: int, request_id: str, now) -> dict:
    return {
        "agentAvailable": True,
        "transferTarget": str(reservation.transfer_number.number),
        "ttlSeconds": ttl_seconds,
        "agentCount": reservation.agent_count,
        "timestamp": format_timestamp(now),
        "requestId": request_id,
    }


def _unavailable(request_id: str, now: datetime) -> dict:
    return {"agentAvailable": False, "timestamp": format_timestamp(now), "requestId": request_id}


def _record(vendor, fields: PingFields, request_id: str, now: datetime, **values) -> CallRecord:
    ping_outcome_note(values["outcome"])  # for the metrics: pings by outcome
    return CallRecord.objects.create(
        request_id=request_id,
        vendor=vendor,
        phone_number=fields.phone_number,
        state=fields.state,
        state_source=(
            CallRecord.StateSource.STATE_CODE
            if fields.state_from_code
            else CallRecord.StateSource.AREA_CODE
        ),
        tracking=fields.tracking,
        received_at=now,
        **values,
    )


def _enqueue_expiry(reservation: Reservation) -> None:
    """Hook for the reservation lifecycle; expiry itself is decided by time, not by this."""
