"""What the floor shows: each a read of the rows that hold it, decided at one moment `now`.

Agents are few (hundreds); call records are many (millions): every query over call records is
bounded by `received_at` and grouped in the database, on an index it already has
(docs/performance.md has the figures).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

from django.db.models import Count, Q
from django.db.models.functions import TruncDate, TruncHour
from django.utils import timezone

from calls.exports.reports import CONNECTED_OUTCOMES, RESERVED_OUTCOMES
from calls.models import CallRecord, CallStatus, InboundCall
from calls.ping.policies import at_once_used, window_starts, window_used
from config.sharedcache import shared_cache_get, shared_cache_set
from routing.activity import AgentActivity, agent_activity
from routing.models import Agent, Reservation
from vendors.models import VendorCap

ACTIVITIES = [code for code, _ in AgentActivity.CHOICES]
# The live counts' window over recent pings.
RECENT_PINGS = timedelta(minutes=15)
# Calls still going are looked for among those received this recently (the stale-call sweep
# ends anything older), so the query stays on the received_at index.
CALLS_WINDOW = timedelta(hours=6)
CALL_IN_PROGRESS = (
    CallStatus.INITIATED,
    CallStatus.RINGING,
    CallStatus.ANSWERED,
    CallStatus.IN_PROGRESS,
)
# A caller waiting for an agent: in our queue (InboundCall.objects.waiting's rule).
CALL_WAITING = Q(queued_at__isnull=False, dequeued_at__isnull=True)


@dataclass
class AgentCounts:
    """Agents by what they are doing now, for one state or the whole floor."""

    label: str
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ACTIVITIES, 0))

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def cells(self) -> list[tuple[str, int]]:
        return [(activity, self.counts[activity]) for activity in ACTIVITIES]


def floor_agent_counts(*, now) -> tuple[AgentCounts, list[AgentCounts]]:
    """The whole floor (each agent once), and per state they are licensed for (an agent with
    several states counts in each), states in natural order."""
    agents = Agent.objects.annotate(activity=agent_activity(now)).order_by()
    total = AgentCounts(label="All agents")
    for row in agents.values("activity").annotate(n=Count("id")):
        total.counts[row["activity"]] = row["n"]
    by_state: dict[str, AgentCounts] = {}
    for row in (
        agents.filter(licenses__state__isnull=False)
        .values("licenses__state", "activity")
        .annotate(n=Count("id"))
    ):
        state = row["licenses__state"]
        by_state.setdefault(state, AgentCounts(label=state)).counts[row["activity"]] = row["n"]
    return total, sorted(by_state.values(), key=lambda counts: counts.label)


def floor_live_holds(*, now, limit: int = 50) -> tuple[int, list[Reservation]]:
    """How many holds are live, and the first `limit` of them, soonest to end first."""
    live = Reservation.objects.live(now)
    holds = list(live.select_related("vendor", "agent").order_by("expires_at", "id")[:limit])
    count = len(holds) if len(holds) < limit else live.count()
    return count, holds


@dataclass(frozen=True)
class CallsNow:
    in_progress: int
    # Callers waiting in the queue for an agent (not counted as in progress).
    waiting: int


def floor_calls_now(*, now: datetime) -> CallsNow:
    recent = InboundCall.objects.filter(
        received_at__gte=now - CALLS_WINDOW, ended_at__isnull=True
    ).order_by()
    counts = recent.aggregate(
        in_progress=Count("id", filter=Q(status__in=CALL_IN_PROGRESS) & ~CALL_WAITING),
        waiting=Count("id", filter=CALL_WAITING),
    )
    return CallsNow(in_progress=counts["in_progress"], waiting=counts["waiting"])


def floor_recent_pings(*, now: datetime, window: timedelta = RECENT_PINGS) -> dict[str, int]:
    """Pings received in the last `window`, by outcome (every outcome, zero included), as the
    call records stand now."""
    counts = dict.fromkeys(CallRecord.Outcome.values, 0)
    rows = (
        CallRecord.objects.filter(received_at__gt=now - window, received_at__lte=now)
        .order_by()
        .values("outcome")
        .annotate(n=Count("id"))
    )
    for row in rows:
        counts[row["outcome"]] = row["n"]
    return counts


@dataclass(frozen=True)
class TransferRate:
    reserved: int
    connected: int

    @property
    def rate(self) -> float | None:
        """Connected per reservation (the funnel's rule); None when nothing was reserved."""
        return self.connected / self.reserved if self.reserved else None


def day_start(moment: datetime) -> datetime:
    """Midnight of the moment's day in the admin's time zone (settings.TIME_ZONE)."""
    local = timezone.localtime(moment)
    return timezone.make_aware(datetime.combine(local.date(), time.min), local.tzinfo)


def _transfer_counts():
    return {
        "reserved": Count("id", filter=Q(outcome__in=RESERVED_OUTCOMES)),
        "connected": Count("id", filter=Q(outcome__in=CONNECTED_OUTCOMES)),
    }


def floor_transfer_rate_today(*, now: datetime, vendor_id: int | None = None) -> TransferRate:
    records = CallRecord.objects.filter(
        received_at__gte=day_start(now), received_at__lte=now, outcome__in=RESERVED_OUTCOMES
    )
    if vendor_id is not None:
        records = records.filter(vendor_id=vendor_id)
    return TransferRate(**records.order_by().aggregate(**_transfer_counts()))


# --- Charts --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HourlyPings:
    hours: list[datetime]
    # Per outcome, one count per hour (same order as `hours`).
    by_outcome: dict[str, list[int]]


def chart_pings_per_hour(
    *, now: datetime, vendor_id: int | None = None, hours: int = 24
) -> HourlyPings:
    """Pings per hour by outcome over the last `hours` hours, the current hour last."""
    last = now.replace(minute=0, second=0, microsecond=0)
    starts = [last - timedelta(hours=back) for back in range(hours - 1, -1, -1)]
    records = CallRecord.objects.filter(received_at__gte=starts[0], received_at__lte=now)
    if vendor_id is not None:
        records = records.filter(vendor_id=vendor_id)
    rows = (
        records.order_by()
        .annotate(hour=TruncHour("received_at"))
        .values("hour", "outcome")
        .annotate(n=Count("id"))
    )
    index = {start: position for position, start in enumerate(starts)}
    by_outcome = {outcome: [0] * hours for outcome in CallRecord.Outcome.values}
    for row in rows:
        position = index.get(row["hour"])
        if position is not None:
            by_outcome.setdefault(row["outcome"], [0] * hours)[position] = row["n"]
    return HourlyPings(hours=starts, by_outcome=by_outcome)


@dataclass(frozen=True)
class DailyTransferRates:
    days: list
    reserved: list[int]
    connected: list[int]

    @property
    def rates(self) -> list[float | None]:
        return [
            round(100 * connected / reserved, 1) if reserved else None
            for reserved, connected in zip(self.reserved, self.connected, strict=True)
        ]


# Days before yesterday are settled (their reservations connected or expired long ago): their
# counts are kept in the shared cache this long, so the chart reads a million rows once an hour at
# most instead of at each refresh, without an index the ping would have to keep up.
SETTLED_DAYS_CACHE_SECONDS = 3600


def _daily_transfer_counts(
    *, since: datetime, until: datetime, vendor_id: int | None, inclusive: bool
) -> dict:
    """{day: (reserved, connected)} for the records received in [since, until) (or [since,
    until] when `inclusive`), days as the admin's time zone has them."""
    # Only the reserved outcomes are read: the others count in neither.
    records = CallRecord.objects.filter(received_at__gte=since, outcome__in=RESERVED_OUTCOMES)
    records = (
        records.filter(received_at__lte=until)
        if inclusive
        else records.filter(received_at__lt=until)
    )
    if vendor_id is not None:
        records = records.filter(vendor_id=vendor_id)
    rows = (
        records.order_by()
        .annotate(day=TruncDate("received_at", tzinfo=timezone.get_current_timezone()))
        .values("day")
        .annotate(**_transfer_counts())
    )
    return {row["day"]: (row["reserved"], row["connected"]) for row in rows}


def chart_transfer_rate_per_day(
    *, now: datetime, vendor_id: int | None = None, days: int = 30
) -> DailyTransferRates:
    """Reservations, connected calls and their rate per day over the last `days` days (today
    last), days as the admin's time zone has them."""
    today = day_start(now)
    first = today - timedelta(days=days - 1)
    settled_until = today - timedelta(days=1)  # yesterday and today may still move
    dates = [(first + timedelta(days=n)).date() for n in range(days)]
    key = (
        f"floor:transfer-rate-per-day:{vendor_id or 'all'}:{timezone.get_current_timezone_name()}"
        f":{first.date().isoformat()}:{settled_until.date().isoformat()}"
    )
    settled = shared_cache_get(key)
    if settled is None:
        settled = _daily_transfer_counts(
            since=first, until=settled_until, vendor_id=vendor_id, inclusive=False
        )
        shared_cache_set(key, settled, SETTLED_DAYS_CACHE_SECONDS)
    recent = _daily_transfer_counts(
        since=max(first, settled_until), until=now, vendor_id=vendor_id, inclusive=True
    )
    counts = {**settled, **recent}
    return DailyTransferRates(
        days=dates,
        reserved=[counts.get(day, (0, 0))[0] for day in dates],
        connected=[counts.get(day, (0, 0))[1] for day in dates],
    )


# A vendor is "near" a cap once it has used this share of it.
NEAR_CAP_SHARE = 0.8


@dataclass(frozen=True)
class NearCap:
    """One of a vendor's caps that is used up to NEAR_CAP_SHARE or more, now."""

    vendor: str
    scope: str  # a state, or "all states"
    limit: str  # at once, per hour, per day
    used: int
    most: int

    @property
    def share(self) -> float:
        return self.used / self.most if self.most else 1.0


@dataclass(frozen=True)
class CapsNow:
    any_caps: bool
    near: list[NearCap]


def floor_vendors_near_caps(*, now: datetime) -> CapsNow:
    """Vendors' caps (calls.ping.policies) used to NEAR_CAP_SHARE or more, fullest first: at
    once (live holds plus calls in progress), and this hour's and today's reservations, as the
    ping counts them. A few queries per cap row; operators keep a handful of them."""
    caps = list(VendorCap.objects.select_related("vendor").order_by("vendor__name", "state"))
    hour, day = window_starts(now)
    near: list[NearCap] = []
    for cap in caps:
        scope = cap.state or "all states"
        used = {}
        if cap.most_at_once is not None:
            count = at_once_used(vendor_id=cap.vendor_id, state=cap.state, now=now)
            used["at once"] = (count, cap.most_at_once)
        for label, period, starts, most in (
            ("per hour", "hour", hour, cap.most_per_hour),
            ("per day", "day", day, cap.most_per_day),
        ):
            if most is not None:
                count = window_used(
                    vendor_id=cap.vendor_id, state=cap.state, period=period, starts=starts
                )
                used[label] = (count, most)
        for label, (count, most) in used.items():
            if count >= most * NEAR_CAP_SHARE:
                near.append(NearCap(cap.vendor.name, scope, label, count, most))
    near.sort(key=lambda row: (-row.share, row.vendor, row.scope, row.limit))
    return CapsNow(any_caps=bool(caps), near=near)
