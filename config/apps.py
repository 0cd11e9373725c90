from django.contrib.admin.apps import AdminConfig
from django.db.models.signals import post_migrate, pre_migrate


class StaffAdminConfig(AdminConfig):
    """Django's admin, served by our site (config.admin_site.StaffAdminSite)."""

    default_site = "config.admin_site.StaffAdminSite"

    def ready(self):
        super().ready()
        from config.database import lift_for_migrations, restore_after_migrations

        # Migrations run with the long database timeouts (config/database.py). Sent once for
        # each app; this app's signal is enough for the whole run.
        pre_migrate.connect(lift_for_migrations, sender=self, dispatch_uid="lift-for-migrations")
        post_migrate.connect(
            restore_after_migrations, sender=self, dispatch_uid="restore-after-migrations"
        )
