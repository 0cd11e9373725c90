"""A vendor's statement: what its pings of a period came to, by day (UTC), billable and not.

A record counts on the day its ping was received. Billable calls are those settled yes; the
others are counted by the reason they were not, and those still running as pending. Payouts
are summed per currency (a vendor's rules may change currency from one date on).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate

from calls.models import CallRecord
from calls.settlement.billing import records_for_settlement
from vendors.models import Vendor

Billable = CallRecord.Billable
Reason = CallRecord.NotBillableReason
Outcome = CallRecord.Outcome

PERIODS = ("day", "week", "month")

# Every reason, in the order statements show them.
REASONS = list(Reason)


def statement_period(*, period: str, day: date) -> tuple[datetime, datetime]:
    """[since, until) in UTC of the day, the week (Monday first) or the month holding `day`."""
    if period == "day":
        start = day
        end = day + timedelta(days=1)
    elif period == "week":
        start = day - timedelta(days=day.weekday())
        end = start + timedelta(days=7)
    elif period == "month":
        start = day.replace(day=1)
        end = (start + timedelta(days=32)).replace(day=1)
    else:
        raise ValueError(f"period must be one of {', '.join(PERIODS)}")
    return _midnight(start), _midnight(end)


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _counts() -> dict:
    counts = {
        "pings": Count("id"),
        "reserved": Count("id", filter=Q(reservation__isnull=False) & ~Q(outcome=Outcome.REPEAT)),
        "calls": Count("id", filter=Q(connected_at__isnull=False)),
        "billable": Count("id", filter=Q(billable=Billable.YES)),
        "not_billable": Count("id", filter=Q(billable=Billable.NO)),
        "pending": Count("id", filter=Q(billable=Billable.PENDING)),
        "talk_seconds": Sum("duration_seconds", filter=Q(billable=Billable.YES)),
    }
    for reason in REASONS:
        counts[f"reason_{reason.value}"] = Count(
            "id", filter=Q(billable=Billable.NO, not_billable_reason=reason)
        )
    return counts


# Aggregates are named apart from the model's fields: an annotation named `billable` would
# stand for the field in the filters of the aggregates after it. For statements and scorecards.
_PREFIX = "agg_"


def named_apart(aggregates: dict) -> dict:
    return {f"{_PREFIX}{name}": aggregate for name, aggregate in aggregates.items()}


def named_back(values: dict) -> dict:
    return {name.removeprefix(_PREFIX): value for name, value in values.items()}


@dataclass
class StatementRow:
    label: str
    day: date | None = None
    pings: int = 0
    reserved: int = 0
    calls: int = 0
    billable: int = 0
    not_billable: int = 0
    pending: int = 0
    talk_seconds: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    payouts: dict[str, Decimal] = field(default_factory=dict)

    @property
    def payout_text(self) -> str:
        return payout_text(self.payouts)

    @property
    def reason_counts(self) -> list[int]:
        """Counts in the order of REASONS (for tables)."""
        return [self.by_reason.get(reason.value, 0) for reason in REASONS]


def payout_text(payouts: dict[str, Decimal]) -> str:
    if not payouts:
        return "0.00"
    return " + ".join(f"{amount:.2f} {currency}".strip() for currency, amount in payouts.items())


@dataclass
class VendorStatement:
    vendor: Vendor
    since: datetime
    until: datetime
    days: list[StatementRow]
    total: StatementRow

    @property
    def reasons(self) -> list[tuple[str, str]]:
        """The reasons any record of the period has (the page's columns; the CSV has all)."""
        return [
            (reason.value, str(reason.label))
            for reason in REASONS
            if self.total.by_reason.get(reason.value)
        ]

    @property
    def last_moment(self) -> datetime:
        """The period's end as people say it: its last day, for a period ending at midnight."""
        return self.until - timedelta(microseconds=1)

    def table(self) -> list[tuple[StatementRow, list[int]]]:
        """Each day's row, then the total's, with its counts of the page's reasons."""
        reasons = [value for value, _ in self.reasons]
        return [
            (row, [row.by_reason.get(reason, 0) for reason in reasons])
            for row in [*self.days, self.total]
        ]


def vendor_statement(*, vendor: Vendor, since: datetime, until: datetime) -> VendorStatement:
    """The statement of `vendor`'s records received in [since, until): one row a day that has
    any, and the total. Two grouped queries on the vendor's received_at index."""
    records = records_for_settlement(
        CallRecord.objects.filter(vendor=vendor, received_at__gte=since, received_at__lt=until)
    ).order_by()
    by_day = records.annotate(day=TruncDate("received_at", tzinfo=UTC)).values("day")
    rows = {
        row["day"]: _row(row["day"].isoformat(), named_back(row))
        for row in by_day.annotate(**named_apart(_counts()))
    }
    total = _row("Total", named_back(records.aggregate(**named_apart(_counts()))))
    paid = (
        by_day.filter(billable=Billable.YES)
        .values("day", "payout_currency")
        .annotate(amount=Sum("payout"))
        .order_by("day", "payout_currency")
    )
    for paid_row in paid:
        currency, amount = paid_row["payout_currency"], paid_row["amount"]
        rows[paid_row["day"]].payouts[currency] = amount
        total.payouts[currency] = total.payouts.get(currency, Decimal("0")) + amount
    days = []
    for day in sorted(rows):
        rows[day].day = day
        days.append(rows[day])
    return VendorStatement(vendor=vendor, since=since, until=until, days=days, total=total)


def _row(label: str, values: dict) -> StatementRow:
    return StatementRow(
        label=label,
        pings=values["pings"],
        reserved=values["reserved"],
        calls=values["calls"],
        billable=values["billable"],
        not_billable=values["not_billable"],
        pending=values["pending"],
        talk_seconds=values["talk_seconds"] or 0,
        by_reason={
            reason.value: values[f"reason_{reason.value}"]
            for reason in REASONS
            if values[f"reason_{reason.value}"]
        },
    )


CSV_HEADER = [
    "day",
    "pings",
    "reserved",
    "calls",
    "billable",
    "not_billable",
    "pending",
    *(f"not_billable_{reason.value}" for reason in REASONS),
    "billable_talk_seconds",
    "payout",
    "currency",
]


def vendor_statement_csv(statement: VendorStatement) -> str:
    """The statement as CSV: a row a day (a day paid in two currencies has a row for each
    currency's payout, its counts on the first), then the total."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for row in [*statement.days, statement.total]:
        payouts = list(row.payouts.items()) or [("", Decimal("0.00"))]
        for index, (currency, amount) in enumerate(payouts):
            counts: list[object] = (
                [
                    row.pings,
                    row.reserved,
                    row.calls,
                    row.billable,
                    row.not_billable,
                    row.pending,
                    *row.reason_counts,
                    row.talk_seconds,
                ]
                if index == 0
                else [""] * (7 + len(REASONS))
            )
            label = row.day.isoformat() if row.day else "total"
            writer.writerow([label, *counts, f"{amount:.2f}", currency])
    return out.getvalue()
