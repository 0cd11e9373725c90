"""The transfer number's release-order index goes (PostgreSQL; SQLite never had it).

The allocation now picks the number released longest ago among a window of free numbers in id
order (`routing.services.NUMBER_WINDOW`), read through the primary key. The index on `held_until`,
rewritten by every ping, filled its front with dead entries every ping walked, and kept every
update of a number from being HOT. Dropped CONCURRENTLY, so pings are not held meanwhile.
"""

from django.db import migrations

INDEX = "transfernumber_release_order"


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}")


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {INDEX} ON routing_transfernumber "
            "(held_until ASC NULLS FIRST, id) WHERE is_active"
        )


class Migration(migrations.Migration):
    atomic = False  # DROP INDEX CONCURRENTLY runs outside a transaction

    dependencies = [("routing", "0004_fewer_indexes_on_ping_rows")]

    operations = [migrations.RunPython(drop_index, create_index, elidable=False)]
