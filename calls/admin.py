from django.contrib import admin

from calls.models import CallExport, CallRecord, DialAttempt, InboundCall


@admin.register(CallRecord)
class CallRecordAdmin(admin.ModelAdmin):
    list_display = ["request_id", "received_at", "vendor", "phone_number", "state", "outcome"]
    list_filter = ["outcome"]
    show_full_result_count = False


@admin.register(InboundCall)
class InboundCallAdmin(admin.ModelAdmin):
    list_display = ["call_sid", "to_number", "from_number", "match", "status", "received_at"]


@admin.register(DialAttempt)
class DialAttemptAdmin(admin.ModelAdmin):
    list_display = ["inbound_call", "attempt", "destination", "status"]


@admin.register(CallExport)
class CallExportAdmin(admin.ModelAdmin):
    list_display = ["requested_at", "requested_by", "format", "status", "row_count"]
