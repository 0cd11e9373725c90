"""A vendor's ping policies as the ping reads them: loaded once with the cached vendor
(vendors.services), so hours and consent cost the common ping nothing, and the caps travel to the
ping's statement as parameters.

Hours of operation are judged here, in Python, in the caller's time zone (routing.geography
decides which zone): plain functions of the cached policies and a moment.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db.models import Q
from django.utils import timezone

from vendors.models import MIDNIGHT, Holiday, OpeningHours, Vendor, VendorCap

# How far ahead the next opening is looked for; past it a closed vendor's retry hint is this.
OPENING_HORIZON_DAYS = 14
# Holidays older than this are not loaded (a caller's date is at most a day behind UTC's).
_HOLIDAYS_PAST_DAYS = 2


@dataclass(frozen=True)
class CapLimits:
    """One VendorCap row: state empty for the vendor's every state together."""

    state: str
    most_at_once: int | None
    most_per_hour: int | None
    most_per_day: int | None


@dataclass(frozen=True)
class VendorPolicies:
    consent_required: bool = False
    duplicate_window_days: int | None = None
    duplicate_all_vendors: bool = False
    # (weekday, opens, closes) of the vendor's schedule, else the operator's; None: always open.
    weekly_hours: tuple[tuple[int, time, time], ...] | None = None
    holidays: frozenset[date] = field(default_factory=frozenset)
    caps: tuple[CapLimits, ...] = ()

    def caps_for(self, state: str) -> tuple[CapLimits | None, CapLimits | None]:
        """The vendor-wide row and the state's row, either None."""
        every = next((cap for cap in self.caps if cap.state == ""), None)
        narrowed = next((cap for cap in self.caps if cap.state == state), None)
        return every, narrowed

    def cap_lock_key(self, *, vendor_id: int, state: str) -> str | None:
        """The advisory lock a capped ping takes (None: no cap applies, no lock).

        Per vendor when a vendor-wide cap exists (every state counts together), else per vendor
        and state: pings of one vendor in other states then never wait for each other.
        """
        every, narrowed = self.caps_for(state)
        if every is not None:
            return f"caps:{vendor_id}"
        if narrowed is not None:
            return f"caps:{vendor_id}:{state}"
        return None

    @property
    def has_caps(self) -> bool:
        return bool(self.caps)


def vendor_policies_load(vendor: Vendor, *, today: date | None = None) -> VendorPolicies:
    """Read a vendor's policies (three queries, at a cache miss only)."""
    hours = list(
        OpeningHours.objects.filter(Q(vendor=vendor) | Q(vendor__isnull=True)).values_list(
            "vendor_id", "weekday", "opens", "closes"
        )
    )
    own = [row[1:] for row in hours if row[0] is not None]
    operator = [row[1:] for row in hours if row[0] is None]
    schedule = own or operator
    since = (today or timezone.now().date()) - timedelta(days=_HOLIDAYS_PAST_DAYS)
    holidays = frozenset(
        Holiday.objects.filter(
            Q(vendor=vendor) | Q(vendor__isnull=True), date__gte=since
        ).values_list("date", flat=True)
    )
    caps = tuple(
        CapLimits(state, at_once, per_hour, per_day)
        for state, at_once, per_hour, per_day in VendorCap.objects.filter(
            vendor=vendor
        ).values_list("state", "most_at_once", "most_per_hour", "most_per_day")
        if (at_once, per_hour, per_day) != (None, None, None)
    )
    return VendorPolicies(
        consent_required=vendor.consent_required,
        duplicate_window_days=vendor.duplicate_window_days or None,
        duplicate_all_vendors=vendor.duplicate_scope == "all_vendors",
        weekly_hours=tuple(sorted(schedule)) if schedule else None,
        holidays=holidays,
        caps=caps,
    )


def seconds_until_open(policies: VendorPolicies, *, zone: str, now: datetime) -> int | None:
    """None when the vendor is open at `now` in `zone` (the caller's); else the whole seconds
    (at least 1) until its next opening, or the horizon's length if none comes within it.

    Open: the caller's date is no holiday, and the time falls in one of the weekday's periods
    (`opens` inclusive, `closes` exclusive, 00:00 closing at midnight). No schedule: every
    hour of every day that is no holiday.
    """
    if policies.weekly_hours is None and not policies.holidays:
        return None
    tz = ZoneInfo(zone)
    local = now.astimezone(tz)
    for offset in range(OPENING_HORIZON_DAYS + 1):
        day = local.date() + timedelta(days=offset)
        if day in policies.holidays:
            continue
        for opens, closes in _periods(policies, day):
            start = _local_moment(day, opens, tz)
            end_day = day + timedelta(days=1) if closes == MIDNIGHT else day
            if start <= now < _local_moment(end_day, closes, tz):
                return None
            if start > now:
                return _whole_seconds(start - now)
    return OPENING_HORIZON_DAYS * 86_400


def _periods(policies: VendorPolicies, day: date) -> list[tuple[time, time]]:
    if policies.weekly_hours is None:
        return [(MIDNIGHT, MIDNIGHT)]
    weekday = day.weekday()
    return [(opens, closes) for wd, opens, closes in policies.weekly_hours if wd == weekday]


def _local_moment(day: date, at: time, tz: ZoneInfo) -> datetime:
    # In UTC, so differences are real seconds across a change of daylight saving time (aware
    # datetimes of one zone subtract as wall clocks).
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC)


def _whole_seconds(delta: timedelta) -> int:
    return max(1, math.ceil(delta.total_seconds()))
