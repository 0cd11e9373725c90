"""Fewer index entries for every reservation: the number's own index is gone
(reservation_number_status leads with it), and only reservations staff released are indexed by
who released them. The new index is built first, without blocking writes.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from config.migration_operations import AddIndexWithoutBlockingWrites

# The index Django made for the foreign key (its name is the same on every database).
NUMBER_INDEX = "routing_reservation_transfer_number_id_a569b1dd"


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY runs outside a transaction

    dependencies = [
        ("routing", "0003_allocation_order_index"),
        ("vendors", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        AddIndexWithoutBlockingWrites(
            model_name="reservation",
            index=models.Index(
                condition=models.Q(("released_by__isnull", False)),
                fields=["released_by"],
                name="reservation_released_by",
            ),
        ),
        migrations.AlterField(
            model_name="reservation",
            name="released_by",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        # Not AlterField's own drop: on PostgreSQL it drops every single-column index on the
        # column, the partial unique reservation_one_live_per_number included.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="reservation",
                    name="transfer_number",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="reservations",
                        to="routing.transfernumber",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    f"DROP INDEX IF EXISTS {NUMBER_INDEX}",
                    reverse_sql=(
                        f"CREATE INDEX {NUMBER_INDEX} ON routing_reservation (transfer_number_id)"
                    ),
                ),
            ],
        ),
    ]
