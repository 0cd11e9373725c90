"""The lead_id index holds the lead_id's first 255 characters, not all of it.

Tracking data is stored whatever its size, but PostgreSQL refuses a B-tree entry over 2,704
bytes: a ping with a longer lead_id failed its call record's insert (a 500). The new index is
built first, then the old one dropped, both without blocking writes.
"""

import django.db.models.fields.json
import django.db.models.functions.text
from django.db import migrations, models

from config.migration_operations import (
    AddIndexWithoutBlockingWrites,
    RemoveIndexWithoutBlockingWrites,
)


class Migration(migrations.Migration):
    atomic = False  # CREATE and DROP INDEX CONCURRENTLY run outside a transaction

    dependencies = [("calls", "0006_fewer_indexes_on_ping_rows")]

    operations = [
        AddIndexWithoutBlockingWrites(
            model_name="callrecord",
            index=models.Index(
                django.db.models.functions.text.Left(
                    django.db.models.fields.json.KeyTextTransform("lead_id", "tracking"), 255
                ),
                name="callrecord_lead_id_start",
            ),
        ),
        RemoveIndexWithoutBlockingWrites(model_name="callrecord", name="callrecord_lead_id"),
    ]
