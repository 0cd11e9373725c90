"""An index of each vendor's live holds, for the concurrency caps (calls.ping.policies): built
without blocking the pings' inserts, as the reservations can be many."""

from django.db import migrations, models

from config.migration_operations import AddIndexWithoutBlockingWrites


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY runs outside a transaction

    dependencies = [("routing", "0012_do_not_call_list")]

    operations = [
        AddIndexWithoutBlockingWrites(
            model_name="reservation",
            index=models.Index(
                condition=models.Q(("status", "active")),
                fields=["vendor", "expires_at"],
                name="reservation_vendor_active",
            ),
        ),
    ]
