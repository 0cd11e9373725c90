"""One live hold per vendor and caller, whatever the state (it was one per vendor, caller and
state: the same caller pinged in AZ, CA and TX held three agents).

Live holds that the new rule forbids are ended first: the caller keeps the earliest, the others
are released and free their agent and number at once (their call records then say expired). The
new partial unique index is built CONCURRENTLY before the old one is dropped, so pings are not
held meanwhile and a live hold is never unguarded. Should pings still running the old code make
a second live hold for a caller during the build, the build fails (leaving an invalid index to
drop by hand): run the migration again.
"""

from django.db import migrations, models
from django.db.models import F, Q
from django.db.models.functions import Now

OLD = "reservation_one_live_per_caller"
NEW = "reservation_one_live_per_vendor_caller"


def end_extra_live_holds(apps, schema_editor):
    Reservation = apps.get_model("routing", "Reservation")
    Agent = apps.get_model("routing", "Agent")
    TransferNumber = apps.get_model("routing", "TransferNumber")
    active = Reservation.objects.filter(status="active")
    # Past their TTL they hold nothing already: record them as expired when they ended.
    active.filter(expires_at__lte=Now()).update(status="expired", ended_at=F("expires_at"))
    kept: set[tuple[int, str]] = set()
    for reservation in active.order_by("created_at", "id"):
        caller = (reservation.vendor_id, reservation.phone_number)
        if caller not in kept:
            kept.add(caller)
            continue
        Reservation.objects.filter(pk=reservation.pk, status="active").update(
            status="released", ended_at=Now()
        )
        Agent.objects.filter(pk=reservation.agent_id, held_until=reservation.expires_at).update(
            held_until=None
        )
        TransferNumber.objects.filter(
            pk=reservation.transfer_number_id, held_until=reservation.expires_at
        ).update(held_until=Now())


def _index_sql(name: str, columns: str, concurrently: str) -> str:
    return (
        f"CREATE UNIQUE INDEX {concurrently} IF NOT EXISTS {name} "
        f"ON routing_reservation ({columns}) WHERE status = 'active'"
    )


def swap_indexes(apps, schema_editor):
    concurrently = "CONCURRENTLY" if schema_editor.connection.vendor == "postgresql" else ""
    schema_editor.execute(_index_sql(NEW, "vendor_id, phone_number", concurrently))
    schema_editor.execute(f"DROP INDEX {concurrently} IF EXISTS {OLD}")


def swap_indexes_back(apps, schema_editor):
    concurrently = "CONCURRENTLY" if schema_editor.connection.vendor == "postgresql" else ""
    schema_editor.execute(_index_sql(OLD, "vendor_id, phone_number, state", concurrently))
    schema_editor.execute(f"DROP INDEX {concurrently} IF EXISTS {NEW}")


class Migration(migrations.Migration):
    atomic = False  # CREATE and DROP INDEX CONCURRENTLY run outside a transaction

    dependencies = [("routing", "0007_agent_destinations_normalized")]

    operations = [
        migrations.RunPython(
            end_extra_live_holds, migrations.RunPython.noop, atomic=True, elidable=False
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveConstraint(model_name="reservation", name=OLD),
                migrations.AddConstraint(
                    model_name="reservation",
                    constraint=models.UniqueConstraint(
                        condition=Q(status="active"),
                        fields=("vendor", "phone_number"),
                        name=NEW,
                    ),
                ),
            ],
            database_operations=[
                migrations.RunPython(swap_indexes, swap_indexes_back, elidable=False),
            ],
        ),
    ]
