from django.contrib import admin

from vendors.models import Vendor, VendorKey, VendorKeyEvent


@admin.register(Vendor)
class VendorAdmin(admin.ModelAdmin):
    list_display = ["name", "is_active", "all_states", "authorized_states", "created_at"]
    search_fields = ["name"]


@admin.register(VendorKey)
class VendorKeyAdmin(admin.ModelAdmin):
    list_display = ["prefix", "vendor", "label", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["prefix", "digest", "created_at", "last_used_at"]


@admin.register(VendorKeyEvent)
class VendorKeyEventAdmin(admin.ModelAdmin):
    list_display = ["key", "action", "actor", "at"]
