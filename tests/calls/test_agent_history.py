"""Status changes from the agent page and from telephony (an agent whose phone rang out) are
recorded with who made them; the API's are in test_agent_status_access."""

import pytest
from telephony_support import agent_with_token

from calls.models import CallRecord
from routing.models import AgentStatusChange
from tests.conftest import AZ_PING
from tests.factories import VendorFactory, floor_build


@pytest.fixture
def floor(db):
    """A vendor for AZ whose key AZ_PING sends, two agents licensed for AZ, two numbers."""
    VendorFactory.with_key(authorized_states=["AZ"], key=AZ_PING["vendorKey"])
    return floor_build(agents={"AZ": 2}, numbers=2)


def _history(agent):
    return list(
        AgentStatusChange.objects.filter(agent=agent)
        .order_by("id")
        .values_list("from_status", "to_status", "changed_by", "source")
    )


def test_the_agent_page_buttons_record_each_change_by_the_agents_login(floor, client):
    agent, _ = agent_with_token(floor.agents["AZ"][0].name)
    client.force_login(agent.user)

    client.post("/agent/status", {"status": "offline"})
    client.post("/agent/status", {"status": "offline"})  # a double click is no change
    client.post("/agent/status", {"status": "available"})

    assert _history(agent) == [
        ("available", "offline", agent.user_id, "page"),
        ("offline", "available", agent.user_id, "page"),
    ]


def test_an_agent_whose_phone_rang_out_is_recorded_as_set_offline_by_telephony(
    floor, ping, carrier
):
    first = ping(AZ_PING).json()["data"]
    reserved = CallRecord.objects.get(request_id=first["requestId"]).agent
    carrier.voice(sid="CA900", to=first["transferTarget"])

    carrier.dial_status(sid="CA900", attempt=1, status="no-answer")

    assert _history(reserved) == [("available", "offline", None, "telephony")]
    reserved.refresh_from_db()
    assert (reserved.status, reserved.on_call_since) == ("offline", None)
