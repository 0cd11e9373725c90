"""The funnel: what became of the pings of a period, per vendor and per state.

A call record's outcome moves on after the ping (reserved, then connected and completed, or
expired), so the funnel counts where each ping stands now:
- pings: every call record (every ping that passed the key, phone and state checks), sandbox
  keys' test pings left out unless asked for;
- reserved: pings that got a reservation, whatever came after (reserved, connected, completed,
  expired). Repeats are not counted here: they reserve nothing new;
- connected: reservations whose call arrived (connected or completed);
- expired: reservations nobody called (their TTL ran out, or they were released early);
- refused: pings a policy refused (do-not-call, consent, duplicate, hours, caps), counted by
  reason too; they hold nothing;
- transfer rate: connected / reserved. A reservation still live counts in reserved only, so
  a period that ends now shows a slightly lower rate until its last reservations settle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Count, Q
from django.db.models.functions import TruncDate
from django.utils import timezone

from calls.exports.forms import SANDBOX_EXCLUDE
from calls.exports.selectors import call_record_traffic
from calls.models import CallRecord
from config.database import analytics_db
from routing.models import UnavailableReason

Outcome = CallRecord.Outcome
# The reasons a policy refuses a ping for, in the contract's order (no_agent is an outcome).
REFUSAL_REASONS = [reason for reason in UnavailableReason if reason != UnavailableReason.NO_AGENT]
RESERVED_OUTCOMES = (
    Outcome.RESERVED,
    Outcome.CONNECTED,
    Outcome.COMPLETED,
    Outcome.EXPIRED,
    Outcome.RELEASED,
)
CONNECTED_OUTCOMES = (Outcome.CONNECTED, Outcome.COMPLETED)

COUNTS = {
    "pings": Count("id"),
    "reserved": Count("id", filter=Q(outcome__in=RESERVED_OUTCOMES)),
    "repeats": Count("id", filter=Q(outcome=Outcome.REPEAT)),
    "no_agent": Count("id", filter=Q(outcome=Outcome.NO_AGENT)),
    "rejected": Count("id", filter=Q(outcome=Outcome.REJECTED)),
    "connected": Count("id", filter=Q(outcome__in=CONNECTED_OUTCOMES)),
    "expired": Count("id", filter=Q(outcome__in=(Outcome.EXPIRED, Outcome.RELEASED))),
    "refused": Count("id", filter=Q(outcome=Outcome.REFUSED)),
    **{
        f"refused_{reason}": Count("id", filter=Q(outcome=Outcome.REFUSED, reason=reason))
        for reason in REFUSAL_REASONS
    },
}


@dataclass(frozen=True)
class FunnelRow:
    label: str
    pings: int = 0
    reserved: int = 0
    repeats: int = 0
    no_agent: int = 0
    rejected: int = 0
    connected: int = 0
    expired: int = 0
    refused: int = 0
    # (reason, count) of the refused pings, in REFUSAL_REASONS' order; only reasons that occur.
    refusals: tuple[tuple[str, int], ...] = ()

    def refused_for(self, reason: str) -> int:
        return dict(self.refusals).get(reason, 0)

    @property
    def transfer_rate(self) -> float | None:
        """Connected per reservation; None when nothing was reserved."""
        return self.connected / self.reserved if self.reserved else None

    @property
    def pending(self) -> int:
        """Reservations neither connected nor expired yet."""
        return self.reserved - self.connected - self.expired


@dataclass(frozen=True)
class FunnelSummary:
    since: datetime
    until: datetime
    total: FunnelRow
    by_vendor: list[FunnelRow]
    by_state: list[FunnelRow]
    # One row a day (the admin's time zone), oldest first: the trend.
    by_day: list[FunnelRow] = field(default_factory=list)


def call_funnel_summary(
    *,
    since: datetime,
    until: datetime,
    vendor_id: int | None = None,
    sandbox: str = SANDBOX_EXCLUDE,
) -> FunnelSummary:
    """Counts for the call records received in [since, until), of one vendor or all, biggest
    vendors first, and per day; sandbox keys' pings left out unless `sandbox` says include or
    only."""
    records = call_record_traffic(
        CallRecord.objects.using(analytics_db()).filter(
            received_at__gte=since, received_at__lt=until
        ),
        sandbox=sandbox,
    ).order_by()
    if vendor_id is not None:
        records = records.filter(vendor_id=vendor_id)
    total = _funnel_row("All", records.aggregate(**COUNTS))
    by_vendor = [
        _funnel_row(row.pop("vendor__name"), row)
        for row in records.values("vendor__name").annotate(**COUNTS)
    ]
    by_state = [
        _funnel_row(row.pop("state"), row) for row in records.values("state").annotate(**COUNTS)
    ]
    by_day = [
        _funnel_row(row.pop("day").isoformat(), row)
        for row in records.annotate(
            day=TruncDate("received_at", tzinfo=timezone.get_current_timezone())
        )
        .values("day")
        .annotate(**COUNTS)
        .order_by("day")
    ]
    by_vendor.sort(key=lambda row: (-row.pings, row.label))
    by_state.sort(key=lambda row: row.label)
    return FunnelSummary(
        since=since,
        until=until,
        total=total,
        by_vendor=by_vendor,
        by_state=by_state,
        by_day=by_day,
    )


FUNNEL_CSV_COLUMNS = [
    "pings", "reserved", "repeats", "no_agent", "rejected", "refused", "connected", "expired",
]  # fmt: skip


def call_funnel_csv_rows(summary: FunnelSummary):
    """The funnel as CSV rows: a header, then each day, vendor and state, then the total."""
    yield ["section", "label", *FUNNEL_CSV_COLUMNS, "transfer_rate"]
    sections = [("day", summary.by_day), ("vendor", summary.by_vendor)]
    sections += [("state", summary.by_state), ("total", [summary.total])]
    for section, rows in sections:
        for row in rows:
            rate = "" if row.transfer_rate is None else f"{row.transfer_rate:.4f}"
            yield [section, row.label, *(getattr(row, name) for name in FUNNEL_CSV_COLUMNS), rate]


def _funnel_row(label: str, counts: dict) -> FunnelRow:
    by_reason = [(str(reason), counts.pop(f"refused_{reason}")) for reason in REFUSAL_REASONS]
    refusals = tuple((reason, count) for reason, count in by_reason if count)
    return FunnelRow(label=label, refusals=refusals, **counts)
