"""Fewer index entries for every ping's call record.

Gone: the vendor's own index (callrecord_vendor_received leads with the vendor) and the phone's
prefix-search twin (searches are exact or `contains`). The phone's index is rebuilt under a name
of ours, and repeats are indexed alone. New indexes are built first, without blocking writes.
"""

import django.db.models.deletion
from django.db import migrations, models

from config.migration_operations import AddIndexWithoutBlockingWrites


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY runs outside a transaction

    dependencies = [
        ("calls", "0005_callrecord_lead_id_index"),
        ("routing", "0003_allocation_order_index"),
        ("vendors", "0001_initial"),
    ]

    operations = [
        AddIndexWithoutBlockingWrites(
            model_name="callrecord",
            index=models.Index(fields=["phone_number"], name="callrecord_phone"),
        ),
        AddIndexWithoutBlockingWrites(
            model_name="callrecord",
            index=models.Index(
                condition=models.Q(("repeat_of__isnull", False)),
                fields=["repeat_of"],
                name="callrecord_repeat_of",
            ),
        ),
        migrations.AlterField(
            model_name="callrecord",
            name="phone_number",
            field=models.CharField(help_text="E.164", max_length=16),
        ),
        migrations.AlterField(
            model_name="callrecord",
            name="repeat_of",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="repeats",
                to="calls.callrecord",
            ),
        ),
        migrations.AlterField(
            model_name="callrecord",
            name="vendor",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="call_records",
                to="vendors.vendor",
            ),
        ),
    ]
