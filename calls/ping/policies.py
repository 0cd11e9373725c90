"""The ping's policies, decided in a fixed order after the vendor is found active and
authorized: do-not-call, consent, duplicate caller, hours of operation, caps (then availability).

Consent and hours are decided in Python from the cached vendor (vendors.policies): they cost no
query. Do-not-call, duplicates and caps need the database, and are decided inside the ping's one
statement on PostgreSQL (POLICY_CHECKS, below, which routing.allocation runs before it locks any
agent or number row), or with the ORM inside the transactional path's transaction (SQLite, and
PostgreSQL's repeats): the same rules in both forms, tests/calls/test_ping_one_statement.py
compares them.

Caps are exact under concurrency: a capped ping takes a transaction-scoped advisory lock of the
vendor (or of the vendor and state, when only the state is capped) and counts after it has it.
In the statement the lock and the counts are in ping_cap_refusal, a PL/pgSQL function (calls
migrations 0018 and 0019): a VOLATILE function's queries see a snapshot taken when each runs,
after the lock, whereas the statement's own snapshot is taken when the statement starts, before
any wait for the lock, and would miss the reservation the lock's previous holder just committed.
Hourly and daily caps read counters the statement keeps (VendorReservationCount, in slots);
a concurrency cap above what the agents could ever hold is not counted at all (0019).
"""

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import F, Sum
from django.db.models.functions import Coalesce

from calls.models import CallRecord
from calls.ping.consent import ConsentEvidence, consent_evidence, consent_verifier
from calls.ping.request import PingFields
from config.database import transaction_lock
from routing.allocation import ADMISSIBLE, NOW, PolicyChecks
from routing.geography import time_zone_for_caller
from routing.models import DoNotCallNumber, Reservation, UnavailableReason
from vendors.models import Vendor, VendorReservationCount
from vendors.policies import CapLimits, VendorPolicies, seconds_until_open

Reason = UnavailableReason


@dataclass(frozen=True)
class Refusal:
    reason: str
    retry_after: int | None = None


@dataclass(frozen=True)
class PolicyInputs:
    """What Python decided before the database is asked: consent and hours, and the caps the
    statement or the ORM path checks."""

    evidence: ConsentEvidence
    consent_missing: bool
    closed_retry_after: int | None  # None: open
    policies: VendorPolicies
    cap_lock: str | None
    every_state: CapLimits | None
    this_state: CapLimits | None


def policy_inputs(vendor: Vendor, fields: PingFields, now: datetime) -> PolicyInputs:
    policies = vendor.policies or VendorPolicies()
    evidence = consent_evidence(fields.tracking)
    consent_missing = policies.consent_required and not consent_verifier().verify(
        evidence, vendor=vendor
    )
    zone = time_zone_for_caller(
        fields.phone_number, fields.state, state_given=fields.state_from_code
    )
    every, narrowed = policies.caps_for(fields.state)
    return PolicyInputs(
        evidence=evidence,
        consent_missing=consent_missing,
        closed_retry_after=seconds_until_open(policies, zone=zone, now=now),
        policies=policies,
        cap_lock=policies.cap_lock_key(vendor_id=vendor.pk, state=fields.state),
        every_state=every,
        this_state=narrowed,
    )


# --- In the statement (PostgreSQL) --------------------------------------------------------------

_CONNECTED_SINCE = f"{NOW} - make_interval(days => %(p_duplicate_days)s::integer)"


def _policy_ctes() -> PolicyChecks:
    record = CallRecord._meta.db_table
    dnc = DoNotCallNumber._meta.db_table
    counts = VendorReservationCount._meta.db_table
    zone = "%(p_operator_zone)s::text"
    return PolicyChecks(
        ctes=f"""
        policy AS MATERIALIZED (
            SELECT CASE WHEN NOT {ADMISSIBLE} THEN NULL
            WHEN EXISTS (SELECT 1 FROM {dnc} d WHERE d.number = %(phone)s)
                THEN '{Reason.DO_NOT_CALL}'
            WHEN %(p_consent_missing)s::boolean THEN '{Reason.CONSENT_MISSING}'
            WHEN %(p_duplicate_days)s::integer IS NOT NULL AND EXISTS (
                SELECT 1 FROM {record} c
                WHERE c.phone_number = %(phone)s AND c.connected_at > {_CONNECTED_SINCE}
                  AND (%(p_duplicate_all)s::boolean OR c.vendor_id = %(vendor)s)
            ) THEN '{Reason.DUPLICATE_CALLER}'
            WHEN %(p_closed_retry)s::integer IS NOT NULL THEN '{Reason.CLOSED}'
            END AS reason
        ),
        caps AS MATERIALIZED (
            -- Only when nothing before refused: the function takes the lock. Its WHERE reads
            -- nothing of the function's row, so it gates the call (a one-time filter).
            SELECT f.reason, f.retry_after
            FROM ping_cap_refusal(
                %(p_cap_lock)s::text, %(vendor)s, %(state)s, %(phone)s, {NOW}, {zone},
                %(p_at_once)s::integer, %(p_per_hour)s::integer, %(p_per_day)s::integer,
                %(p_state_at_once)s::integer, %(p_state_per_hour)s::integer,
                %(p_state_per_day)s::integer, %(p_default_retry)s::integer
            ) AS f
            WHERE %(p_cap_lock)s::text IS NOT NULL AND {ADMISSIBLE}
              AND (SELECT reason FROM policy) IS NULL
        ),
        refusal AS (
            SELECT COALESCE(p.reason, k.reason) AS reason,
                   CASE WHEN p.reason = '{Reason.CLOSED}' THEN %(p_closed_retry)s::integer
                        WHEN p.reason IS NULL THEN k.retry_after END AS retry_after
            FROM policy p LEFT JOIN caps k ON TRUE
        )""",
        after_reservation=f"""
        counted AS (
            -- A capped vendor's reservations per hour and day: all states together where the
            -- vendor has a window cap, the state's own where the state has one.
            INSERT INTO {counts} AS v (vendor_id, state, period, starts_at, slot, reservations)
            SELECT %(vendor)s, w.state, w.period, w.starts_at,
                   mod(pg_backend_pid(), {VendorReservationCount.SLOTS}), 1
            FROM reservation r, (VALUES
                (%(p_count_every)s::boolean, '', 'hour', date_trunc('hour', {NOW})),
                (%(p_count_every)s::boolean, '', 'day',
                 date_trunc('day', {NOW} AT TIME ZONE {zone}) AT TIME ZONE {zone}),
                (%(p_count_state)s::boolean, %(state)s, 'hour', date_trunc('hour', {NOW})),
                (%(p_count_state)s::boolean, %(state)s, 'day',
                 date_trunc('day', {NOW} AT TIME ZONE {zone}) AT TIME ZONE {zone})
            ) AS w (counted, state, period, starts_at)
            WHERE w.counted
            ON CONFLICT (vendor_id, state, period, starts_at, slot)
            DO UPDATE SET reservations = v.reservations + 1
            RETURNING v.id
        )""",
    )


POLICY_CHECKS = _policy_ctes()


def policy_params(inputs: PolicyInputs | None) -> dict:
    """The statement's policy parameters (None: every policy off, as the pgbench script runs)."""
    if inputs is None:
        return {
            "p_consent_missing": False,
            "p_duplicate_days": None,
            "p_duplicate_all": False,
            "p_closed_retry": None,
            "p_cap_lock": None,
            "p_operator_zone": settings.OPERATOR_TIME_ZONE,
            "p_default_retry": settings.PING_RETRY_AFTER_DEFAULT_SECONDS,
            **_cap_params(None, None),
        }
    policies = inputs.policies
    return {
        "p_consent_missing": inputs.consent_missing,
        "p_duplicate_days": policies.duplicate_window_days,
        "p_duplicate_all": policies.duplicate_all_vendors,
        "p_closed_retry": inputs.closed_retry_after,
        "p_cap_lock": inputs.cap_lock,
        "p_operator_zone": settings.OPERATOR_TIME_ZONE,
        "p_default_retry": settings.PING_RETRY_AFTER_DEFAULT_SECONDS,
        **_cap_params(inputs.every_state, inputs.this_state),
    }


def _counts_windows(cap: CapLimits | None) -> bool:
    return cap is not None and (cap.most_per_hour is not None or cap.most_per_day is not None)


def _cap_params(every: CapLimits | None, narrowed: CapLimits | None) -> dict:
    return {
        "p_count_every": _counts_windows(every),
        "p_count_state": _counts_windows(narrowed),
        "p_at_once": every and every.most_at_once,
        "p_per_hour": every and every.most_per_hour,
        "p_per_day": every and every.most_per_day,
        "p_state_at_once": narrowed and narrowed.most_at_once,
        "p_state_per_hour": narrowed and narrowed.most_per_hour,
        "p_state_per_day": narrowed and narrowed.most_per_day,
    }


# --- With the ORM (the transactional path) ------------------------------------------------------


def policy_refusal(
    *, vendor: Vendor, fields: PingFields, inputs: PolicyInputs, now: datetime
) -> Refusal | None:
    """The statement's checks with the ORM, in the same order. Call inside the ping's
    transaction, after the caller's lock and the repeat check."""
    if DoNotCallNumber.objects.filter(number=fields.phone_number).exists():
        return Refusal(Reason.DO_NOT_CALL)
    if inputs.consent_missing:
        return Refusal(Reason.CONSENT_MISSING)
    days = inputs.policies.duplicate_window_days
    if days is not None:
        transferred = CallRecord.objects.filter(
            phone_number=fields.phone_number, connected_at__gt=now - timedelta(days=days)
        )
        if not inputs.policies.duplicate_all_vendors:
            transferred = transferred.filter(vendor=vendor)
        if transferred.exists():
            return Refusal(Reason.DUPLICATE_CALLER)
    if inputs.closed_retry_after is not None:
        return Refusal(Reason.CLOSED, inputs.closed_retry_after)
    if inputs.cap_lock is None:
        return None
    # The statement's lock (ping_cap_refusal): both paths serialize on it.
    transaction_lock(inputs.cap_lock)
    hour, day = window_starts(now)
    # Daily, hourly, then concurrency (ping_cap_refusal's order), the vendor's before its state's.
    scopes = (("", inputs.every_state), (fields.state, inputs.this_state))
    for period, starts, reason in (
        ("day", day, Reason.DAILY_CAP),
        ("hour", hour, Reason.HOURLY_CAP),
    ):
        for state, cap in scopes:
            if cap is None:
                continue
            most = cap.most_per_day if period == "day" else cap.most_per_hour
            if (
                most is not None
                and window_used(vendor_id=vendor.pk, state=state, period=period, starts=starts)
                >= most
            ):
                return Refusal(reason, _seconds(window_end(period, starts) - now))
    for state, cap in scopes:
        most = None if cap is None else cap.most_at_once
        if most is not None and (refusal := _concurrency_refusal(vendor, state, most, now)):
            return refusal
    return None


def window_used(*, vendor_id: int, state: str, period: str, starts: datetime) -> int:
    """A capped vendor's reservations in the window (hour or day) starting at `starts`: its
    counter's slots (the statement keeps them), for all its states (state empty) or one."""
    return VendorReservationCount.objects.filter(
        vendor_id=vendor_id, state=state, period=period, starts_at=starts
    ).aggregate(used=Coalesce(Sum("reservations"), 0))["used"]


def _holds_and_calls(vendor_id: int, state: str, now: datetime):
    """What a concurrency cap counts: the vendor's live holds and its calls in progress."""
    holds = Reservation.objects.live(now).filter(vendor_id=vendor_id)
    calls = CallRecord.objects.filter(vendor_id=vendor_id, outcome=CallRecord.Outcome.CONNECTED)
    if state:
        holds, calls = holds.filter(state=state), calls.filter(state=state)
    return holds, calls


def at_once_used(*, vendor_id: int, state: str, now: datetime) -> int:
    """Live holds plus calls in progress, as a concurrency cap counts them."""
    holds, calls = _holds_and_calls(vendor_id, state, now)
    return holds.count() + calls.count()


def _concurrency_refusal(vendor: Vendor, state: str, most: int, now: datetime) -> Refusal | None:
    holds, calls = _holds_and_calls(vendor.pk, state, now)
    if holds.count() + calls.count() < most:
        return None
    soonest = holds.order_by("expires_at").values_list("expires_at", flat=True).first()
    retry = _seconds(soonest - now) if soonest else _default_retry()
    return Refusal(Reason.CONCURRENCY_CAP, retry)


def window_starts(now: datetime) -> tuple[datetime, datetime]:
    """The start of `now`'s clock hour, and of its day in the operator's time zone."""
    hour = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    zone = ZoneInfo(settings.OPERATOR_TIME_ZONE)
    local = now.astimezone(zone)
    day = datetime(local.year, local.month, local.day, tzinfo=zone)
    return hour, day


def window_end(period: str, starts: datetime) -> datetime:
    if period == "hour":
        return starts + timedelta(hours=1)
    local = starts.astimezone(ZoneInfo(settings.OPERATOR_TIME_ZONE))
    following = (local + timedelta(days=1)).date()
    return datetime(following.year, following.month, following.day, tzinfo=local.tzinfo)


def count_reservation(*, vendor: Vendor, state: str, inputs: PolicyInputs, now: datetime) -> None:
    """The statement's `counted`, with the ORM: a capped vendor's reservation, per window."""
    scopes = [
        scope
        for scope, cap in (("", inputs.every_state), (state, inputs.this_state))
        if _counts_windows(cap)
    ]
    hour, day = window_starts(now)
    for scope in scopes:
        for period, starts in (("hour", hour), ("day", day)):
            row, created = VendorReservationCount.objects.get_or_create(
                vendor=vendor,
                state=scope,
                period=period,
                starts_at=starts,
                slot=0,
                defaults={"reservations": 1},
            )
            if not created:
                VendorReservationCount.objects.filter(pk=row.pk).update(
                    reservations=F("reservations") + 1
                )


def _seconds(delta: timedelta) -> int:
    return max(1, math.ceil(delta.total_seconds()))


def _default_retry() -> int:
    return settings.PING_RETRY_AFTER_DEFAULT_SECONDS
