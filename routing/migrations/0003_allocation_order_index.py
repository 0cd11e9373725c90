"""An index in the transfer numbers' allocation order, on PostgreSQL.

The allocation takes the free number released longest ago (`held_until` ascending, never-held
first): with this index that is the first entries scanned, however large the pool. SQLite cannot
build an index with NULLS FIRST, and its pools are small: there the migration does nothing.
"""

from django.db import migrations

INDEX = "transfernumber_release_order"


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {INDEX} ON routing_transfernumber "
            "(held_until ASC NULLS FIRST, id) WHERE is_active"
        )


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("routing", "0002_alter_agentlicense_state_alter_reservation_state")]

    operations = [migrations.RunPython(create_index, drop_index, elidable=False)]
