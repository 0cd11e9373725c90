"""The last line of defence against double booking: whatever the code did, the database itself
refuses a second live hold of one agent, of one transfer number, or for one vendor's caller.
On SQLite and on PostgreSQL, after every migration."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from routing.models import Agent, Reservation, TransferNumber
from tests.conftest import AZ_PING
from tests.factories import VendorFactory, floor_build


@pytest.fixture
def floor(db):
    """A vendor for AZ and CA whose key AZ_PING sends, two agents licensed for AZ, two numbers:
    room for a second hold beside the first."""
    VendorFactory.with_key(authorized_states=["AZ", "CA"], key=AZ_PING["vendorKey"])
    return floor_build(agents={"AZ": 2}, numbers=2)


@pytest.mark.parametrize(
    "shared", ["agent", "transfer number", "caller", "caller in another state"]
)
def test_the_database_refuses_a_second_live_hold(floor, ping, shared):
    assert ping(AZ_PING).json()["data"]["agentAvailable"] is True
    held = Reservation.objects.get()
    other_agent = Agent.objects.exclude(pk=held.agent_id).first()
    other_number = TransferNumber.objects.exclude(pk=held.transfer_number_id).first()
    now = timezone.now()
    second = Reservation(
        vendor=held.vendor,
        agent=held.agent if shared == "agent" else other_agent,
        transfer_number=held.transfer_number if shared == "transfer number" else other_number,
        phone_number=held.phone_number if shared.startswith("caller") else "+14805550999",
        state="CA" if shared == "caller in another state" else held.state,
        agent_count=1,
        ttl_seconds=60,
        created_at=now,
        expires_at=now + timedelta(seconds=60),
    )

    with pytest.raises(IntegrityError), transaction.atomic():
        second.save()

    # Once the first hold has ended, the same second hold is accepted.
    held.status = Reservation.Status.EXPIRED
    held.save(update_fields=["status"])
    second.save()
    assert Reservation.objects.filter(status="active").count() == 1
