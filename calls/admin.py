"""Call records and calls in the staff admin: read-only, and quick on millions of rows."""

import json

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import SuspiciousOperation
from django.utils import timezone
from django.utils.html import format_html

from calls.exports.admin import CallRecordExportAdminMixin
from calls.exports.forms import SANDBOX_CHOICES, SANDBOX_EXCLUDE
from calls.exports.selectors import (
    call_record_search_q,
    call_record_states_in_use,
    call_record_traffic,
)
from calls.floor.views import floor_urls, floor_view
from calls.models import (
    CallExport,
    CallRecord,
    DialAttempt,
    InboundCall,
)
from calls.settlement.admin import SettlementAdminMixin
from config.admin_site import NoCountAdminMixin, ReadOnlyAdmin, StatesInUseFilter


class CallRecordStateFilter(StatesInUseFilter):
    def states_in_use(self, request, model_admin):
        return call_record_states_in_use()


class SandboxTrafficFilter(admin.SimpleListFilter):
    """Sandbox keys' pings are test traffic: the list leaves them out unless asked for, with the
    same `sandbox` parameter (exclude, include, only) as the exports and the API."""

    title = "sandbox traffic"
    parameter_name = "sandbox"

    def lookups(self, request, model_admin):
        return SANDBOX_CHOICES

    def _chosen(self) -> str:
        value = self.value()
        return value if value in dict(SANDBOX_CHOICES) else SANDBOX_EXCLUDE

    def queryset(self, request, queryset):
        return call_record_traffic(queryset, sandbox=self._chosen())

    def choices(self, changelist):
        # No "All" entry: no parameter means the default, live traffic only.
        current = self._chosen()
        for value, title in self.lookup_choices:
            yield {
                "selected": current == value,
                "query_string": changelist.get_query_string(
                    {self.parameter_name: value} if value != SANDBOX_EXCLUDE else {},
                    [] if value != SANDBOX_EXCLUDE else [self.parameter_name],
                ),
                "display": title,
            }


@admin.register(CallRecord)
class CallRecordAdmin(
    SettlementAdminMixin, CallRecordExportAdminMixin, NoCountAdminMixin, ReadOnlyAdmin
):
    # Fits a 1366 px screen beside the admin's menu: the request id shortened (in full on the
    # record's page, and searched in full), states by code; the transfer target is on the record.
    list_display = [
        "received_at",
        "request_id_short",
        "vendor",
        "phone_number",
        "state_code",
        "outcome_shown",
        # The agent, the transfer target and the payout are on the record's page (and the
        # payouts in the statements): the list fits a 1366 px screen.
        "billable",
        "lead_id",
    ]
    list_filter = [
        # First: which traffic the list shows (live only, unless asked) is not easy to miss.
        SandboxTrafficFilter,
        ("received_at", admin.DateFieldListFilter),
        "vendor",
        CallRecordStateFilter,
        "outcome",
        "reason",
        "billable",
        "not_billable_reason",
    ]
    list_select_related = ["vendor", "agent"]
    search_fields = ["request_id"]  # shows the box; get_search_results does the matching
    search_help_text = (
        "An exact request id, phone number, lead_id, TrustedForm certificate URL or Jornaya LeadiD."
    )
    readonly_fields = ["tracking_readable", "waited"]
    exclude = ["tracking"]

    @admin.display(description="outcome", ordering="outcome")
    def outcome_shown(self, record: CallRecord) -> str:
        """The outcome, with the reason of an unavailable answer and a sandbox key's mark: one
        column, so the list still fits a 1366 px screen."""
        text = record.get_outcome_display()
        if record.reason and record.outcome != CallRecord.Outcome.NO_AGENT:
            text = f"{text}: {record.get_reason_display()}"
        return f"{text} (sandbox)" if record.sandbox else text

    def get_search_results(self, request, queryset, search_term):
        # The exports' rule (calls.exports.selectors): the list and an export of it agree.
        if not search_term.strip():
            return queryset, False
        return queryset.filter(call_record_search_q(search_term)), False

    def _changelist_count(self, request) -> int | None:
        """The export page compares its selection with the list's: there, and only there, count
        what the list selects (the list itself never counts past its next page)."""
        try:
            return self.get_changelist_instance(request).queryset.count()
        except (IncorrectLookupParameters, SuspiciousOperation):
            return None

    @admin.display(description="Request ID", ordering="request_id")
    def request_id_short(self, obj):
        text = str(obj.request_id)
        return format_html('<span title="{}">{}…</span>', text, text[:8])

    @admin.display(description="State", ordering="state")
    def state_code(self, obj):
        return obj.state

    @admin.display(description="Lead ID")
    def lead_id(self, obj):
        value = (obj.tracking or {}).get("lead_id") if isinstance(obj.tracking, dict) else None
        return "" if value is None else str(value)

    @admin.display(description="Waited in the queue")
    def waited(self, obj):
        return wait_summary(obj)

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


def wait_summary(obj: CallRecord | InboundCall) -> str:
    """A call's wait in the queue in words: none, still waiting, or how long and how it ended."""
    if obj.queued_at is None:
        return "—"
    if obj.dequeued_at is None:
        return f"waiting since {timezone.localtime(obj.queued_at):%H:%M:%S}"
    seconds = max(0, round((obj.dequeued_at - obj.queued_at).total_seconds()))
    return f"{seconds} s, {obj.get_wait_result_display() or 'ended'}"


@admin.register(InboundCall)
class InboundCallAdmin(ReadOnlyAdmin):
    list_display = [
        "call_sid", "to_number", "from_number", "match", "state", "routed_to", "status",
        "waited", "received_at",
    ]  # fmt: skip
    list_filter = [
        "match", "status", "wait_result", ("received_at", admin.DateFieldListFilter),
    ]  # fmt: skip
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "call_sid", "to_number", "from_number", "match", "call_record", "state",
                    "routed_to", "status", "received_at", "answered_at", "ended_at",
                    "duration_seconds",
                ]
            },
        ),
        ("Wait in the queue", {"fields": ["waited", "queued_at", "dequeued_at", "wait_result"]}),
    ]  # fmt: skip
    readonly_fields = ["waited"]

    @admin.display(description="Waited")
    def waited(self, obj):
        return wait_summary(obj)

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


# The admin's home page: the operations floor (calls.floor).
admin.site.home_install(view=floor_view, urls=floor_urls)  # type: ignore[attr-defined]
