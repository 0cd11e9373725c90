"""Vendor scorecards: how each vendor's pings of a period did, side by side.

One grouped query over the period's call records (conditional aggregates, on the received_at
index), so a million records cost one pass. The figures, per vendor:
- pings: every call record; reserved: pings that got a hold (repeats not counted);
- repeats; refused: by reason code (policy refusals); no agent; rejected;
- connected: records whose call arrived (on time or late); completed: whose call ended;
- billable: settled yes; payout: their sum per currency;
- transfer rate: calls arrived / pings; match rate: calls arrived / reserved;
- caller-id mismatch rate: mismatches / calls whose caller id could be compared;
- duplicate rate: calls not billable as a billing duplicate / calls that completed;
- average talk time: over calls an agent talked on (talk time over 0 s).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db.models import Avg, Count, Q, Sum

from calls.exports.reports import REFUSAL_REASONS
from calls.models import CallRecord
from calls.settlement.billing import records_for_settlement
from calls.settlement.models import BillingRule
from calls.settlement.statements import named_apart, named_back

Billable = CallRecord.Billable
Outcome = CallRecord.Outcome

# Policy refusals carry their contract reason code in CallRecord.reason.
REFUSED = Outcome.REFUSED


def _refusal_reasons() -> list[str]:
    return [str(reason) for reason in REFUSAL_REASONS]


def _aggregates() -> dict:
    aggregates = {
        "pings": Count("id"),
        "reserved": Count("id", filter=Q(reservation__isnull=False) & ~Q(outcome=Outcome.REPEAT)),
        "repeats": Count("id", filter=Q(outcome=Outcome.REPEAT)),
        "refused": Count("id", filter=Q(outcome=REFUSED)),
        "no_agent": Count("id", filter=Q(outcome=Outcome.NO_AGENT)),
        "rejected": Count("id", filter=Q(outcome=Outcome.REJECTED)),
        "connected": Count("id", filter=Q(connected_at__isnull=False)),
        "completed": Count("id", filter=Q(outcome=Outcome.COMPLETED)),
        "billable": Count("id", filter=Q(billable=Billable.YES)),
        "caller_id_compared": Count("id", filter=Q(caller_id_matches__isnull=False)),
        "caller_id_mismatches": Count("id", filter=Q(caller_id_matches=False)),
        "duplicates": Count(
            "id",
            filter=Q(
                billable=Billable.NO,
                not_billable_reason=CallRecord.NotBillableReason.DUPLICATE,
            ),
        ),
        "average_talk_seconds": Avg("duration_seconds", filter=Q(duration_seconds__gt=0)),
        "payout": Sum("payout", filter=Q(billable=Billable.YES)),
    }
    # Refused by reason, in the same pass: one conditional count per reason code.
    for reason in _refusal_reasons():
        aggregates[f"refused_{reason}"] = Count("id", filter=Q(outcome=REFUSED, reason=reason))
    return aggregates


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass
class Scorecard:
    vendor_id: int
    vendor: str
    pings: int = 0
    reserved: int = 0
    repeats: int = 0
    refused: int = 0
    no_agent: int = 0
    rejected: int = 0
    connected: int = 0
    completed: int = 0
    billable: int = 0
    caller_id_compared: int = 0
    caller_id_mismatches: int = 0
    duplicates: int = 0
    average_talk_seconds: float | None = None
    payout: Decimal = Decimal("0.00")
    currencies: list[str] = field(default_factory=list)
    refused_by_reason: dict[str, int] = field(default_factory=dict)

    @property
    def transfer_rate(self) -> float | None:
        return _ratio(self.connected, self.pings)

    @property
    def match_rate(self) -> float | None:
        return _ratio(self.connected, self.reserved)

    @property
    def caller_id_mismatch_rate(self) -> float | None:
        return _ratio(self.caller_id_mismatches, self.caller_id_compared)

    @property
    def duplicate_rate(self) -> float | None:
        return _ratio(self.duplicates, self.completed)

    @property
    def payout_text(self) -> str:
        currency = "/".join(self.currencies)
        return f"{self.payout:.2f} {currency}".strip()


@dataclass
class Scorecards:
    since: datetime
    until: datetime
    rows: list[Scorecard]
    refusal_reasons: list[str]


def vendor_scorecards(*, since: datetime, until: datetime) -> Scorecards:
    """Every vendor with records received in [since, until), most pings first."""
    records = records_for_settlement(
        CallRecord.objects.filter(received_at__gte=since, received_at__lt=until)
    ).order_by()
    reasons = _refusal_reasons()
    rows = []
    grouped = records.values("vendor_id", "vendor__name").annotate(**named_apart(_aggregates()))
    for values in map(named_back, grouped):
        refused_by_reason = {
            reason: values.pop(f"refused_{reason}")
            for reason in reasons
            if values.get(f"refused_{reason}")
        }
        for reason in reasons:
            values.pop(f"refused_{reason}", None)
        rows.append(
            Scorecard(
                vendor=values.pop("vendor__name"),
                refused_by_reason=refused_by_reason,
                **{**values, "payout": values["payout"] or Decimal("0.00")},
            )
        )
    _currencies(rows)
    rows.sort(key=lambda row: (-row.pings, row.vendor))
    return Scorecards(since=since, until=until, rows=rows, refusal_reasons=reasons)


def _currencies(rows: list[Scorecard]) -> None:
    """The currencies each vendor's payouts are in (nearly always one): from its rules' few rows,
    not from the records."""
    by_vendor: dict[int, set[str]] = {}
    for vendor_id, currency in BillingRule.objects.filter(
        vendor_id__in=[row.vendor_id for row in rows]
    ).values_list("vendor_id", "currency"):
        by_vendor.setdefault(vendor_id, set()).add(currency)
    for row in rows:
        row.currencies = sorted(by_vendor.get(row.vendor_id, ()))
