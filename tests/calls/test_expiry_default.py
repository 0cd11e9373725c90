"""By default a ping queues no expiry task: beat's sweep records expiry (docs/operations.md)."""

import pytest

from tests.conftest import AZ_PING
from tests.factories import VendorFactory, floor_build

pytestmark = pytest.mark.django_db


@pytest.fixture
def floor(db):
    """A vendor for AZ whose key AZ_PING sends, three agents licensed for AZ, five numbers."""
    VendorFactory.with_key(authorized_states=["AZ"], key=AZ_PING["vendorKey"])
    return floor_build(agents={"AZ": 3}, numbers=5)


def test_by_default_a_ping_queues_no_expiry_task(floor, ping, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        answer = ping(AZ_PING)

    assert answer.json()["data"]["agentAvailable"] is True
    assert callbacks == []
