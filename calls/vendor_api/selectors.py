"""The call records a vendor may read, and how each call arrived."""

from datetime import datetime

from django.db.models import (
    Case,
    CharField,
    Count,
    Exists,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce

from calls.models import CallRecord, InboundCall
from routing.models import Reservation

# How the transferred call reached us, as the API names it.
ARRIVAL_ON_TIME = "on_time"
ARRIVAL_LATE = "late"


def _sandbox_scope(records: QuerySet, *, sandbox: bool) -> QuerySet:
    """The one place sandbox and live records are kept apart: a sandbox key reads only sandbox
    records, a live key only live ones."""
    return records.filter(sandbox=sandbox)


def vendor_call_records(
    *,
    vendor_id: int,
    sandbox: bool = False,
    since: datetime | None = None,
    until: datetime | None = None,
    outcomes: list[str] | None = None,
) -> QuerySet:
    """The vendor's own records, newest first, each annotated with how its call arrived:
    `arrival` on_time (during its hold) or late (after the hold ended, on the same number) or
    None (no call), and `unmatched_calls`: the calls that reached its number after its hold was
    used and before anyone else's hold there (the number's last hold was this vendor's).

    Never another vendor's: the vendor's id is the first filter, whatever else is asked.
    """
    records = _sandbox_scope(CallRecord.objects.filter(vendor_id=vendor_id), sandbox=sandbox)
    if since is not None:
        records = records.filter(received_at__gte=since)
    if until is not None:
        records = records.filter(received_at__lt=until)
    if outcomes:
        records = records.filter(outcome__in=outcomes)
    return records.annotate(arrival=_arrival(), unmatched_calls=_unmatched_calls())


def _arrival() -> Case:
    on_time = InboundCall.objects.filter(
        call_record=OuterRef("pk"), match=InboundCall.Match.MATCHED
    )
    late = InboundCall.objects.filter(call_record=OuterRef("pk"), match=InboundCall.Match.LATE)
    return Case(
        When(Exists(on_time), then=Value(ARRIVAL_ON_TIME)),
        When(Exists(late), then=Value(ARRIVAL_LATE)),
        default=Value(None),
        output_field=CharField(),
    )


def _unmatched_calls() -> Case:
    # A later hold on the same number, made before the call arrived: the call is that hold's.
    later_hold = Reservation.objects.filter(
        transfer_number_id=OuterRef(OuterRef("reservation__transfer_number_id")),
        created_at__gt=OuterRef(OuterRef("reservation__created_at")),
        created_at__lte=OuterRef("received_at"),
    )
    unmatched = (
        InboundCall.objects.filter(
            match=InboundCall.Match.NO_RESERVATION,
            call_record__isnull=True,
            to_number=OuterRef("transfer_target"),
            received_at__gte=OuterRef("received_at"),
        )
        .exclude(Exists(later_hold))
        .order_by()
        .values("to_number")
        .annotate(count=Count("pk"))
        .values("count")[:1]
    )
    return Case(
        When(
            Q(reservation__isnull=False, repeat_of__isnull=True),
            then=Coalesce(Subquery(unmatched), 0),
        ),
        default=Value(0),
        output_field=IntegerField(),
    )
