"""The ping, as the first event of a call: validate, reserve, and record what happened."""

import functools
import logging
import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from calls.models import CallRecord
from calls.ping.consent import ConsentEvidence, consent_evidence
from calls.ping.policies import (
    POLICY_CHECKS,
    PolicyInputs,
    Refusal,
    count_reservation,
    policy_inputs,
    policy_params,
    policy_refusal,
)
from calls.ping.request import PingFields, look_alike_warnings, read_ping_fields
from calls.settlement.billing import billing_at_ping
from config.broker import task_publish
from config.errors import ApplicationError
from routing.allocation import (
    AllocationStatement,
    RecordInsert,
    agent_soonest_free_at,
    allocation_statement,
    reservation_create,
    reservation_create_in_one_statement,
    reservation_find_live,
    reservation_lock_caller,
)
from routing.models import Reservation, UnavailableReason
from vendors.models import Vendor
from vendors.services import vendor_key_admit

logger = logging.getLogger(__name__)

MESSAGE_INACTIVE = "Vendor is not active."


class VendorRefused(ApplicationError):
    status = 403


@dataclass(frozen=True)
class KeyValidation:
    """A ping without a phone number: the key is good; what may its vendor send?"""

    vendor_active: bool
    authorized_states: list[str]
    warnings: tuple[str, ...] = ()
    sandbox: bool = False  # the key is a sandbox key (calls.ping.sandbox)


@dataclass(frozen=True)
class PingAnswer:
    """What became of a ping: an agent held for the caller (reserved or repeat), or none."""

    outcome: str  # CallRecord.Outcome: reserved, repeat, no_agent or refused
    timestamp: datetime
    transfer_target: str | None = None
    ttl_seconds: int | None = None
    agent_count: int | None = None
    # Unavailable: the contract's reason code, and when a later ping may succeed (None: none will).
    reason: str | None = None
    retry_after_seconds: int | None = None
    # Body fields that look like misspelled contract fields (request.look_alike_fields).
    warnings: tuple[str, ...] = ()
    # A sandbox key's answer (calls.ping.sandbox): forced by the caller's number, nothing held.
    sandbox: bool = False

    @property
    def agent_available(self) -> bool:
        return self.transfer_target is not None


def vendor_ping(
    *, payload: dict, request_id: str, now: datetime | None = None, client: str | None = None
) -> PingAnswer | KeyValidation:
    """Answer a ping (or a key validation); the view renders the answer in the contract's words.

    `client` is the caller's address, for the rate limit on failed keys; the per-key rate limit
    applies to every ping. `now` is for tests (a fake clock): without it, holds are decided by
    the database's clock, so web machines whose clocks disagree never cut each other's holds
    short.
    """
    admitted = vendor_key_admit(key=payload.get("vendorKey"), client=client, now=now)
    vendor = admitted.vendor
    warnings = look_alike_warnings(payload)
    if "phoneNumber" not in payload:
        return KeyValidation(
            vendor_active=vendor.is_active,
            authorized_states=vendor.authorized_state_list(),
            sandbox=admitted.sandbox,
            warnings=warnings,
        )
    fields = read_ping_fields(payload)
    refusal = _refusal(vendor, fields.state)
    if refusal is not None:
        _record(vendor, fields, request_id, now or timezone.now(), sandbox=admitted.sandbox,
                outcome=CallRecord.Outcome.REJECTED, rejected_reason=refusal,
                **_evidence_values(consent_evidence(fields.tracking)))  # fmt: skip
        raise VendorRefused(refusal)
    if admitted.sandbox:
        # Decided by the caller's number, before any policy or hold (imported here: the
        # sandbox module builds this module's answers).
        from calls.ping.sandbox import sandbox_ping

        return sandbox_ping(
            vendor=vendor, fields=fields, request_id=request_id, now=now, warnings=warnings
        )
    answer = _reserve(vendor, fields, request_id, now)
    return replace(answer, warnings=warnings) if warnings else answer


def _refusal(vendor: Vendor, state: str) -> str | None:
    if not vendor.is_active:
        return MESSAGE_INACTIVE
    if not vendor.is_authorized_for(state):
        return f"Vendor is not authorized for state {state}."
    return None


def _reserve(
    vendor: Vendor, fields: PingFields, request_id: str, now: datetime | None
) -> PingAnswer:
    # Consent and hours, from the cached vendor: no query (calls.ping.policies).
    inputs = policy_inputs(vendor, fields, now or timezone.now())
    if connection.vendor == "postgresql":
        answer = _reserve_in_one_statement(vendor, fields, request_id, now, inputs)
        if answer is not None:
            return answer
    return _reserve_in_transaction(vendor, fields, request_id, now, inputs)


def _reserve_in_one_statement(
    vendor: Vendor,
    fields: PingFields,
    request_id: str,
    now: datetime | None,
    inputs: PolicyInputs | None = None,
) -> PingAnswer | None:
    """The common ping on PostgreSQL in one statement: reserve (or not) and write the call record.

    None when this ping is not the common case (a live reservation for the caller, another ping
    for the same caller in flight, or a lost race for the caller's one live hold): the
    transactional path below then answers it, as a repeat. `now` None: the statement decides by
    the database's clock, and returns it.
    """
    ttl_seconds = settings.RESERVATION_TTL_SECONDS
    inputs = inputs or policy_inputs(vendor, fields, now or timezone.now())
    reserved = reservation_create_in_one_statement(
        statement=ping_statement(),
        vendor_id=vendor.pk,
        phone_number=fields.phone_number,
        state=fields.state,
        ttl_seconds=ttl_seconds,
        now=now,
        record_params=_record_params(vendor, fields, request_id, inputs.evidence),
        policy_params=policy_params(inputs),
    )
    if reserved is None:
        return None
    if reserved.refusal is not None:
        return _refused(reserved.now, Refusal(reserved.refusal, reserved.retry_after))
    if reserved.reservation_id is None:
        if _hold_committed_meanwhile(vendor, fields, reserved.now):
            # A repeat after all: undo its record; the transactional path answers it.
            CallRecord.objects.filter(request_id=request_id).delete()
            return None
        return _unavailable(reserved.now, reserved.soonest_agent_free_at)
    # Plain values from here on: model instances would parse the phone numbers again.
    _enqueue_expiry(reserved.reservation_id, reserved.now + timedelta(seconds=ttl_seconds))
    return _available(reserved.transfer_number, ttl_seconds, reserved.agent_count, reserved.now)


def _hold_committed_meanwhile(vendor: Vendor, fields: PingFields, now: datetime) -> bool:
    """Whether the caller holds a live reservation the statement did not see.

    The statement reads the database as it stood when it began, and takes the caller's lock a
    moment later: another ping for the caller can commit its hold in between. That ping is then
    seen by the lock (free again) but not by the live check, and with no other agent free this
    one would answer no agent instead of a repeat. Asked only when no agent was free: a ping that
    reserves pays nothing. (A cap refusal, whose counts see that hold, asks the same inside the
    statement: ping_cap_refusal, calls migration 0019.)
    """
    return (
        reservation_find_live(vendor=vendor, phone_number=fields.phone_number, now=now) is not None
    )


# Columns of the call record the statement fills itself: from the reservation it made (or did
# not), and the moment it decided by (routing.allocation.OUTCOME_VALUES).
_RECORD_FROM_STATEMENT = {
    "received_at": "{now}",
    "outcome": (
        f"CASE WHEN {{refusal}} IS NOT NULL THEN '{CallRecord.Outcome.REFUSED}' "
        f"WHEN {{reservation_id}} IS NULL THEN '{CallRecord.Outcome.NO_AGENT}' "
        f"ELSE '{CallRecord.Outcome.RESERVED}' END"
    ),
    "reason": (
        f"COALESCE({{refusal}}, CASE WHEN {{reservation_id}} IS NULL "
        f"THEN '{UnavailableReason.NO_AGENT}' ELSE '' END)"
    ),
    "reservation_id": "{reservation_id}",
    "agent_id": "{agent_id}",
    "transfer_target": "COALESCE({transfer_number}, '')",
    # Refused: nobody looked for a free agent.
    "agent_count": "CASE WHEN {refusal} IS NULL THEN COALESCE({agent_count}, 0) END",
    "ttl_seconds": "CASE WHEN {reservation_id} IS NULL THEN NULL ELSE {ttl_seconds} END",
    # Settled at once when nothing was reserved (calls.settlement.billing.billing_at_ping).
    "billable": (
        f"CASE WHEN {{reservation_id}} IS NULL THEN '{CallRecord.Billable.NO}' "
        f"ELSE '{CallRecord.Billable.PENDING}' END"
    ),
    "not_billable_reason": (
        f"CASE WHEN {{refusal}} IS NOT NULL THEN '{CallRecord.NotBillableReason.REFUSED}' "
        f"WHEN {{reservation_id}} IS NULL THEN '{CallRecord.NotBillableReason.NO_AGENT}' "
        "ELSE '' END"
    ),
    "payout": "CASE WHEN {reservation_id} IS NULL THEN 0.00 ELSE NULL END",
    "billing_decided_at": "CASE WHEN {reservation_id} IS NULL THEN {now} ELSE NULL END",
}


@functools.cache
def _record_fields() -> list:
    """CallRecord's columns that take a parameter: what the ping sets, or the field's default."""
    return [
        field
        for field in CallRecord._meta.concrete_fields
        if not field.primary_key and field.column not in _RECORD_FROM_STATEMENT
    ]


def _record_params(
    vendor: Vendor, fields: PingFields, request_id: str, evidence: ConsentEvidence | None = None
) -> dict:
    values = {
        **_evidence_values(evidence or ConsentEvidence()),
        "request_id": request_id,
        "vendor_id": vendor.pk,
        "phone_number": fields.phone_number,
        "state": fields.state,
        "state_source": _state_source(fields),
        "tracking": _tracking_field().get_db_prep_save(fields.tracking, connection),
    }
    params = ping_record_default_params()
    params.update((f"c_{column}", value) for column, value in values.items())
    return params


# The call record's columns `_record_params` fills from the ping itself.
_RECORD_FROM_PING = frozenset(
    {
        "request_id",
        "vendor_id",
        "phone_number",
        "state",
        "state_source",
        "tracking",
        "trustedform_cert_url",
        "jornaya_leadid",
    }
)


def _evidence_values(evidence: ConsentEvidence) -> dict:
    return {
        "trustedform_cert_url": evidence.trustedform_cert_url,
        "jornaya_leadid": evidence.jornaya_leadid,
    }


@functools.cache
def _tracking_field():
    return CallRecord._meta.get_field("tracking")


def ping_record_default_params() -> dict:
    """The parameters of the call record's columns the ping does not set: their fields' defaults,
    ready for the database (public for the pgbench script)."""
    params = dict(_constant_default_params())
    for field in _fields_with_callable_defaults():
        params[f"c_{field.column}"] = field.get_db_prep_save(field.get_default(), connection)
    return params


@functools.cache
def _defaulted_fields() -> list:
    return [field for field in _record_fields() if field.column not in _RECORD_FROM_PING]


@functools.cache
def _fields_with_callable_defaults() -> list:
    return [
        field for field in _defaulted_fields() if field.has_default() and callable(field.default)
    ]


@functools.cache
def _constant_default_params() -> dict:
    return {
        f"c_{field.column}": field.get_db_prep_save(field.get_default(), connection)
        for field in _defaulted_fields()
        if field not in _fields_with_callable_defaults()
    }


@functools.cache
def ping_statement() -> AllocationStatement:
    """The ping's one statement (PostgreSQL): routing's allocation, writing the call record."""
    columns = {
        # Typed, as a bound NULL in a SELECT list would otherwise be taken for text.
        field.column: f"%(c_{field.column})s::{field.db_type(connection)}".replace(
            "timestamp with time zone", "timestamptz"
        )
        for field in _record_fields()
    }
    columns.update(_RECORD_FROM_STATEMENT)
    return allocation_statement(
        record=RecordInsert(table=CallRecord._meta.db_table, columns=columns),
        policies=POLICY_CHECKS,
    )


def _reserve_in_transaction(
    vendor: Vendor,
    fields: PingFields,
    request_id: str,
    now: datetime | None,
    inputs: PolicyInputs | None = None,
) -> PingAnswer:
    given_now = now
    ttl_seconds = settings.RESERVATION_TTL_SECONDS
    inputs = inputs or policy_inputs(vendor, fields, now or timezone.now())
    evidence = _evidence_values(inputs.evidence)
    # Two pings for one caller can race: the caller lock makes the second wait for the first and
    # answer as a repeat. Should that ever fail, its insert hits the one-live-hold-per-caller
    # index, and its second pass finds the winner's reservation and answers as a repeat.
    for attempt in (1, 2):
        try:
            with transaction.atomic():
                clock = reservation_lock_caller(vendor=vendor, phone_number=fields.phone_number)
                # Decided by the database's clock, read once the caller's lock is held.
                now = given_now or clock
                live = reservation_find_live(
                    vendor=vendor, phone_number=fields.phone_number, now=now
                )
                if live is not None:
                    return _answer_repeat(vendor, fields, request_id, now, live, evidence)
                # The policies, in the statement's order, before any agent or number is locked.
                refusal = policy_refusal(vendor=vendor, fields=fields, inputs=inputs, now=now)
                if refusal is not None:
                    _record(vendor, fields, request_id, now, outcome=CallRecord.Outcome.REFUSED,
                            reason=refusal.reason, **evidence)  # fmt: skip
                    return _refused(now, refusal)
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
                            reason=UnavailableReason.NO_AGENT, agent_count=0,
                            **evidence)  # fmt: skip
                    return _unavailable(now, agent_soonest_free_at(state=fields.state, now=now))
                count_reservation(vendor=vendor, state=fields.state, inputs=inputs, now=now)
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
                    **evidence,
                )
            _enqueue_expiry(reservation.pk, reservation.expires_at)
            return _available(
                str(reservation.transfer_number.number), ttl_seconds, reservation.agent_count, now
            )
        except IntegrityError:
            if attempt == 2:
                raise
            logger.info("Concurrent ping for the same caller; answering as a repeat")
    raise AssertionError("unreachable")


def _answer_repeat(
    vendor: Vendor,
    fields: PingFields,
    request_id: str,
    now: datetime,
    live: Reservation,
    evidence: dict,
) -> PingAnswer:
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
        **evidence,
    )
    return _available(
        str(live.transfer_number.number),
        ttl_left,
        live.agent_count,
        now,
        outcome=CallRecord.Outcome.REPEAT,
    )


def _available(
    transfer_target: str,
    ttl_seconds: int,
    agent_count: int,
    now: datetime,
    outcome: str = CallRecord.Outcome.RESERVED,
) -> PingAnswer:
    return PingAnswer(
        outcome=outcome,
        timestamp=now,
        transfer_target=transfer_target,
        ttl_seconds=ttl_seconds,
        agent_count=agent_count,
    )


def _unavailable(now: datetime, soonest_free_at: datetime | None) -> PingAnswer:
    """No agent free: retry when the soonest hold or wrap-up in the state ends, or after the
    configured default when none will (every agent offline or on a call)."""
    if soonest_free_at is not None:
        retry = max(1, math.ceil((soonest_free_at - now).total_seconds()))
    else:
        retry = settings.PING_RETRY_AFTER_DEFAULT_SECONDS
    return PingAnswer(
        outcome=CallRecord.Outcome.NO_AGENT,
        timestamp=now,
        reason=UnavailableReason.NO_AGENT,
        retry_after_seconds=retry,
    )


def _refused(now: datetime, refusal: Refusal) -> PingAnswer:
    return PingAnswer(
        outcome=CallRecord.Outcome.REFUSED,
        timestamp=now,
        reason=refusal.reason,
        retry_after_seconds=refusal.retry_after,
    )


def ping_record_values(vendor, fields: PingFields, request_id: str, now: datetime) -> dict:
    """The columns of a ping's call record that come from the ping itself (the sandbox's and the
    bench's records take them from here too)."""
    return {
        "request_id": request_id,
        "vendor": vendor,
        "phone_number": fields.phone_number,
        "state": fields.state,
        "state_source": _state_source(fields),
        "tracking": fields.tracking,
        "received_at": now,
    }


def _state_source(fields: PingFields) -> str:
    if fields.state_from_code:
        return CallRecord.StateSource.STATE_CODE
    return CallRecord.StateSource.AREA_CODE


def _record(vendor, fields: PingFields, request_id: str, now: datetime, **values) -> CallRecord:
    return CallRecord.objects.create(
        **ping_record_values(vendor, fields, request_id, now),
        **billing_at_ping(outcome=values["outcome"], now=now),
        **values,
    )


def _enqueue_expiry(reservation_id: int, expires_at: datetime) -> None:
    """Ask a worker to expire the reservation the moment its TTL passes, once it is committed.

    Only keeps the records prompt: availability is already decided by time, and the beat sweep
    catches whatever this misses. So a broker that is down is logged, never fails the ping.
    Off (RESERVATION_EXPIRY_TASKS) the sweep alone keeps the records, within a sweep interval.
    """
    if not settings.RESERVATION_EXPIRY_TASKS:
        return

    def send() -> None:
        from calls.tasks import expire_reservation  # Celery's app, loaded only when used

        try:
            # Bounded (BROKER_PUBLISH_TIMEOUT_MS): a hung broker must not hold the ping.
            task_publish(expire_reservation, args=[reservation_id], eta=expires_at)
        except Exception:
            logger.warning(
                "Could not enqueue the expiry of reservation %s; the sweep will expire it",
                reservation_id,
                exc_info=True,
            )

    transaction.on_commit(send)
