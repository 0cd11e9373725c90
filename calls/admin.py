from django.contrib import admin

from calls.admin_exports import CallRecordExportAdminMixin
from calls.models import CallExport, CallRecord, DialAttempt, InboundCall


@admin.register(CallRecord)
class CallRecordAdmin(CallRecordExportAdminMixin, admin.ModelAdmin):
    list_display = ["request_id", "received_at", "vendor", "phone_number", "state", "outcome"]
    list_filter = ["outcome"]
    show_full_result_count = False


class DialAttemptInline(admin.TabularInline):
    model = DialAttempt
    extra = 0
    can_delete = False
    fields = ["attempt", "agent", "destination", "started_at", "status", "duration_seconds"]
    readonly_fields = fields


@admin.register(InboundCall)
class InboundCallAdmin(admin.ModelAdmin):
    list_display = [
        "call_sid", "to_number", "from_number", "match", "state", "routed_to", "status",
        "received_at",
    ]  # fmt: skip
    list_filter = ["match", "status"]
    search_fields = ["call_sid", "to_number", "from_number"]
    raw_id_fields = ["call_record"]
    inlines = [DialAttemptInline]


@admin.register(DialAttempt)
class DialAttemptAdmin(admin.ModelAdmin):
    list_display = ["inbound_call", "attempt", "destination", "status"]


@admin.register(CallExport)
class CallExportAdmin(admin.ModelAdmin):
    """The export audit: who exported what, when, and how many rows. Read-only."""

    list_display = [
        "requested_at", "requested_by", "source", "format", "status", "row_count", "rows_written",
    ]  # fmt: skip
    list_filter = ["source", "format", "status"]
    list_select_related = ["requested_by"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
