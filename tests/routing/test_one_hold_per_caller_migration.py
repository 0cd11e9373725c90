"""The migration to one live hold per vendor and caller, on a database that already holds one
caller in several states (what the old rule allowed): the earliest hold stays, the others are
released and free their agent and number, and the database then refuses a second one."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = ("routing", "0007_agent_destinations_normalized")
AFTER = ("routing", "0008_one_live_hold_per_vendor_caller")


def migrate(target):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([target])
    return executor.loader.project_state([target]).apps


@pytest.fixture(autouse=True)
def _latest_schema_afterwards():
    """Back to every app's latest migration, whatever the test left: migrating routing back
    unapplies the later migrations that depend on it (the do-not-call list, the call records'
    reason), which the tests after this one need."""
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def test_it_keeps_each_callers_first_live_hold_and_releases_the_others():
    apps = migrate(BEFORE)
    try:
        Vendor = apps.get_model("vendors", "Vendor")
        Agent = apps.get_model("routing", "Agent")
        TransferNumber = apps.get_model("routing", "TransferNumber")
        Reservation = apps.get_model("routing", "Reservation")
        vendor = Vendor.objects.create(name="Acme", all_states=True)
        now = timezone.now()
        holds = []
        for index, state in enumerate(["AZ", "CA", "TX"]):
            expires = now + timedelta(seconds=60 - index)
            agent = Agent.objects.create(
                name=f"Agent {index}", destination="sip:a@example.com", held_until=expires
            )
            number = TransferNumber.objects.create(number=f"+1877570392{index}", held_until=expires)
            hold = Reservation.objects.create(
                vendor=vendor, agent=agent, transfer_number=number,
                phone_number="+14805550100", state=state, agent_count=1, ttl_seconds=60,
                created_at=now + timedelta(seconds=index), expires_at=expires,
            )  # fmt: skip
            holds.append(hold)

        apps = migrate(AFTER)
    finally:
        migrate(AFTER)

    Reservation = apps.get_model("routing", "Reservation")
    Agent = apps.get_model("routing", "Agent")
    statuses = {hold.pk: Reservation.objects.get(pk=hold.pk).status for hold in holds}
    assert statuses == {holds[0].pk: "active", holds[1].pk: "released", holds[2].pk: "released"}
    assert list(Agent.objects.exclude(held_until=None).values_list("pk", flat=True)) == [
        holds[0].agent_id
    ]
    second = Reservation(
        vendor_id=holds[0].vendor_id, agent_id=holds[1].agent_id,
        transfer_number_id=holds[1].transfer_number_id, phone_number="+14805550100",
        state="CA", agent_count=1, ttl_seconds=60, created_at=now,
        expires_at=now + timedelta(seconds=60),
    )  # fmt: skip
    with pytest.raises(IntegrityError), transaction.atomic():
        second.save()
