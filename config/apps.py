from django.contrib.admin.apps import AdminConfig


class StaffAdminConfig(AdminConfig):
    """Django's admin, served by our site (config.admin_site.StaffAdminSite)."""

    default_site = "config.admin_site.StaffAdminSite"
