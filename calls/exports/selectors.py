"""The call records a selection holds, and the tracking keys among them."""

from __future__ import annotations

import contextlib
import re
import uuid

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import Q, QuerySet

from calls.exports.forms import CallRecordFilters
from calls.models import CallRecord

# Rows fetched per round trip.
FETCH_CHUNK_ROWS = 2_000


def call_record_select(*, filters: CallRecordFilters) -> QuerySet[CallRecord]:
    """The call records the filters select, oldest first."""
    records = CallRecord.objects.all()
    if filters.since:
        records = records.filter(received_at__gte=filters.since)
    if filters.until:
        records = records.filter(received_at__lt=filters.until)
    if filters.vendor_ids:
        records = records.filter(vendor_id__in=filters.vendor_ids)
    if filters.states:
        records = records.filter(state__in=filters.states)
    if filters.outcomes:
        records = records.filter(outcome__in=filters.outcomes)
    if filters.reasons:
        records = records.filter(reason__in=filters.reasons)
    if filters.search:
        records = records.filter(_search_q(filters.search))
    return records.order_by("received_at", "id")


def _search_q(term: str) -> Q:
    query = (
        Q(vendor__name__icontains=term)
        | Q(tracking__icontains=term)
        | Q(rejected_reason__icontains=term)
    )
    digits = re.sub(r"\D", "", term)
    if len(digits) >= 3 and re.fullmatch(r"[\d\s()+.-]+", term):
        query |= Q(phone_number__contains=digits) | Q(transfer_target__contains=digits)
    with contextlib.suppress(ValueError):
        query |= Q(request_id=uuid.UUID(term))
    return query | consent_evidence_match(term)


def consent_evidence_match(term: str) -> Q:
    """Records whose consent evidence is `term`: a TrustedForm certificate URL or a Jornaya
    LeadiD, as the vendor sent it or all in upper or lower case (hex either way). Each on its
    partial index, whose condition the query repeats so the planner may use it."""
    term = term.strip()
    if not term:
        return Q(pk__in=[])
    spellings = sorted({term, term.upper(), term.lower()})
    return (Q(trustedform_cert_url__in=spellings) & ~Q(trustedform_cert_url="")) | (
        Q(jornaya_leadid__in=spellings) & ~Q(jornaya_leadid="")
    )


def call_record_tracking_keys(*, records: QuerySet[CallRecord]) -> list[str]:
    """The union of tracking keys in the selection, sorted; collected by the database."""
    try:
        sql, params = records.order_by().values("tracking").query.sql_with_params()
    except EmptyResultSet:
        return []
    if connection.vendor == "postgresql":
        query = (
            "SELECT DISTINCT jsonb_object_keys(selection.tracking) FROM (" + sql + ") selection"
            " WHERE jsonb_typeof(selection.tracking) = 'object'"
        )
    elif connection.vendor == "sqlite":
        query = (
            "SELECT DISTINCT item.key FROM (" + sql + ") selection,"
            " json_each(selection.tracking) item WHERE json_type(selection.tracking) = 'object'"
        )
    else:  # another database: correct, just slower
        keys: set[str] = set()
        for tracking in records.values_list("tracking", flat=True).iterator(FETCH_CHUNK_ROWS):
            if isinstance(tracking, dict):
                keys.update(tracking)
        return sorted(keys)
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return sorted(str(row[0]) for row in cursor.fetchall())
