from django.contrib import admin

from routing.models import Agent, AgentLicense, Reservation, TransferNumber


class AgentLicenseInline(admin.TabularInline):
    model = AgentLicense
    extra = 0


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    list_display = ["name", "status", "destination", "idle_since", "held_until", "on_call_since"]
    inlines = [AgentLicenseInline]
    search_fields = ["name"]


@admin.register(TransferNumber)
class TransferNumberAdmin(admin.ModelAdmin):
    list_display = ["number", "is_active", "held_until"]


@admin.register(Reservation)
class ReservationAdmin(admin.ModelAdmin):
    list_display = ["id", "vendor", "agent", "transfer_number", "state", "status", "expires_at"]
    list_filter = ["status"]
