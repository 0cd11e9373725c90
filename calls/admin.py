"""Call records and calls in the staff admin: read-only, and quick on millions of rows."""

import contextlib
import json
import uuid

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import SuspiciousOperation
from django.db.models import Q
from django.db.models.fields.json import KeyTextTransform
from django.db.models.lookups import Exact
from django.utils.html import format_html

from calls.exports.admin import CallRecordExportAdminMixin
from calls.exports.selectors import consent_evidence_match
from calls.models import (
    LEAD_ID_INDEXED_CHARACTERS,
    CallExport,
    CallRecord,
    DialAttempt,
    InboundCall,
    lead_id_indexed,
)
from config.admin_site import NoCountAdminMixin, ReadOnlyAdmin
from routing.geography import InvalidPhoneNumber, normalize_us_phone


@admin.register(CallRecord)
class CallRecordAdmin(CallRecordExportAdminMixin, NoCountAdminMixin, ReadOnlyAdmin):
    list_display = [
        "received_at",
        "request_id",
        "vendor",
        "phone_number",
        "state",
        "outcome",
        "reason",
        "agent",
        "transfer_target",
        "lead_id",
    ]
    list_filter = [
        ("received_at", admin.DateFieldListFilter),
        "vendor",
        "state",
        "outcome",
        "reason",
    ]
    list_select_related = ["vendor", "agent"]
    search_fields = ["request_id"]  # shows the box; get_search_results does the matching
    search_help_text = (
        "An exact request id, phone number, lead_id, TrustedForm certificate URL or Jornaya LeadiD."
    )
    readonly_fields = ["tracking_readable"]
    exclude = ["tracking"]

    def get_search_results(self, request, queryset, search_term):
        # Exact matches only, each on an index: a LIKE over a million rows would scan them all.
        term = search_term.strip()
        if not term:
            return queryset, False
        if "\x00" in term:
            # No record holds one, and PostgreSQL refuses it in a parameter (DataError). Django's
            # search form refuses it before the change list gets here; this is for any other
            # caller (an autocomplete, a script).
            return queryset.none(), False
        # Exact on the text of tracking ->> 'lead_id', found through the index on its start.
        match = Q(Exact(lead_id_indexed(), term[:LEAD_ID_INDEXED_CHARACTERS])) & Q(
            Exact(KeyTextTransform("lead_id", "tracking"), term)
        )
        with contextlib.suppress(ValueError):
            match |= Q(request_id=uuid.UUID(term))
        with contextlib.suppress(InvalidPhoneNumber):
            match |= Q(phone_number=normalize_us_phone(term))
        match |= consent_evidence_match(term)
        return queryset.filter(match), False

    def _changelist_count(self, request) -> int | None:
        """The export page compares its selection with the list's: there, and only there, count
        what the list selects (the list itself never counts past its next page)."""
        try:
            return self.get_changelist_instance(request).queryset.count()
        except (IncorrectLookupParameters, SuspiciousOperation):
            return None

    @admin.display(description="lead_id")
    def lead_id(self, obj):
        value = (obj.tracking or {}).get("lead_id") if isinstance(obj.tracking, dict) else None
        return "" if value is None else str(value)

    @admin.display(description="Tracking data")
    def tracking_readable(self, obj):
        text = json.dumps(obj.tracking, indent=2, sort_keys=True, ensure_ascii=False)
        return format_html('<pre style="margin:0">{}</pre>', text)


# All shown, none editable.
_DIAL_ATTEMPT_FIELDS = (
    "attempt",
    "agent",
    "destination",
    "started_at",
    "status",
    "duration_seconds",
)


class DialAttemptInline(admin.TabularInline):
    model = DialAttempt
    extra = 0
    can_delete = False
    fields = _DIAL_ATTEMPT_FIELDS
    readonly_fields = _DIAL_ATTEMPT_FIELDS


@admin.register(InboundCall)
class InboundCallAdmin(ReadOnlyAdmin):
    list_display = [
        "call_sid", "to_number", "from_number", "match", "state", "routed_to", "status",
        "received_at",
    ]  # fmt: skip
    list_filter = ["match", "status", ("received_at", admin.DateFieldListFilter)]
    # Exact matches: inbound calls grow like call records, and a LIKE would scan them all.
    search_fields = ["=call_sid", "=to_number", "=from_number"]
    raw_id_fields = ["call_record"]
    inlines = [DialAttemptInline]
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER


@admin.register(DialAttempt)
class DialAttemptAdmin(ReadOnlyAdmin):
    list_display = ["inbound_call", "attempt", "destination", "status", "started_at"]
    list_select_related = ["inbound_call"]


@admin.register(CallExport)
class CallExportAdmin(ReadOnlyAdmin):
    """The export audit: who exported what, when, and how many rows. Read-only."""

    list_display = [
        "requested_at", "requested_by", "source", "format", "status", "row_count", "rows_written",
    ]  # fmt: skip
    list_filter = ["source", "format", "status"]
    list_select_related = ["requested_by"]
