"""The call records a selection holds, and the tracking keys among them."""

from __future__ import annotations

import contextlib
import uuid

from django.core.exceptions import EmptyResultSet
from django.db import connection, connections
from django.db.models import Q, QuerySet
from django.db.models.fields.json import KeyTextTransform
from django.db.models.lookups import Exact

from calls.exports.forms import SANDBOX_EXCLUDE, SANDBOX_ONLY, CallRecordFilters
from calls.models import LEAD_ID_INDEXED_CHARACTERS, CallRecord, lead_id_indexed
from config.moments import moment_text
from routing.geography import InvalidPhoneNumber, normalize_us_phone
from vendors.models import Vendor

# Rows fetched per round trip.
FETCH_CHUNK_ROWS = 2_000


def call_record_select(
    *, filters: CallRecordFilters, using: str | None = None
) -> QuerySet[CallRecord]:
    """The call records the filters select, oldest first; read on `using` (an analyst's read
    names `config.database.analytics_db()`), else the primary."""
    records = call_record_traffic(CallRecord.objects.using(using).all(), sandbox=filters.sandbox)
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
        records = records.filter(call_record_search_q(filters.search))
    return records.order_by("received_at", "id")


def call_record_traffic(records: QuerySet[CallRecord], *, sandbox: str) -> QuerySet[CallRecord]:
    """Sandbox keys' records left out (exclude, the default), kept (include), or alone (only)."""
    if sandbox == SANDBOX_EXCLUDE:
        return records.filter(sandbox=False)
    if sandbox == SANDBOX_ONLY:
        return records.filter(sandbox=True)
    return records


def call_record_filters_describe(*, filters: CallRecordFilters) -> list[tuple[str, str]]:
    """The filters in words, as staff read them back (an export's page): (what, which)."""
    described = [
        ("Received from", moment_text(filters.since) if filters.since else "the first record"),
        ("Received before", moment_text(filters.until) if filters.until else "now"),
    ]
    if filters.vendor_ids:
        names = dict(Vendor.objects.filter(pk__in=filters.vendor_ids).values_list("pk", "name"))
        described.append(
            (
                "Vendors",
                ", ".join(names.get(pk, f"vendor #{pk} (deleted)") for pk in filters.vendor_ids),
            )
        )
    else:
        described.append(("Vendors", "all"))
    described.append(("States", ", ".join(filters.states) if filters.states else "all"))
    outcomes = dict(CallRecord.Outcome.choices)
    described.append(
        (
            "Outcomes",
            ", ".join(str(outcomes.get(o, o)) for o in filters.outcomes)
            if filters.outcomes
            else "all",
        )
    )
    if filters.search:
        described.append(("Search", f"“{filters.search}” (an exact request id, phone or lead_id)"))
    return described


def call_record_search_q(term: str) -> Q:
    """The one search rule of call records, for the admin's list and every export alike: an exact
    request id, phone number (any NANP spelling) or lead_id, each found on an index. A partial
    match (LIKE) over a million records would read them all; nothing matches an empty term."""
    term = term.strip()
    if not term or "\x00" in term:  # no record holds a NUL, and PostgreSQL refuses one
        return Q(pk__in=[])
    # Exact on the text of tracking ->> 'lead_id', found through the index on its start.
    match = Q(Exact(lead_id_indexed(), term[:LEAD_ID_INDEXED_CHARACTERS])) & Q(
        Exact(KeyTextTransform("lead_id", "tracking"), term)
    )
    with contextlib.suppress(ValueError):
        match |= Q(request_id=uuid.UUID(term))
    with contextlib.suppress(InvalidPhoneNumber):
        match |= Q(phone_number=normalize_us_phone(term))
    return match | consent_evidence_match(term)


def call_record_states_in_use() -> list[str]:
    """The states of any call record, read as a loose index scan: one index probe per state on
    callrecord_state_received (a DISTINCT would read every record)."""
    table = connection.ops.quote_name(CallRecord._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH RECURSIVE used(state) AS (SELECT MIN(state) FROM {table} UNION ALL"
            f" SELECT (SELECT MIN(later.state) FROM {table} later WHERE later.state > used.state)"
            " FROM used WHERE used.state IS NOT NULL)"
            " SELECT state FROM used WHERE state IS NOT NULL"
        )
        return [row[0] for row in cursor.fetchall()]


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
    connection = connections[records.db]
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
