"""Who may set an agent's status through the API: the agent's own login, a superuser, or staff
allowed to change agents (Operations). Anyone else gets 403 and nothing changes."""

import pytest
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
from telephony_support import agent_with_token

from calls.models import CallRecord
from routing.models import Agent, AgentStatusChange, Reservation
from tests.conftest import AZ_PING
from tests.factories import AgentFactory, VendorFactory, floor_build


@pytest.fixture
def floor(db):
    """A vendor for AZ whose key AZ_PING sends, two agents licensed for AZ, two numbers."""
    VendorFactory.with_key(authorized_states=["AZ"], key=AZ_PING["vendorKey"])
    return floor_build(agents={"AZ": 2}, numbers=2)


def _set_offline(api, agent_id, token):
    return api.post(
        f"/api/v1/agents/{agent_id}/status",
        {"status": "offline"},
        format="json",
        HTTP_AUTHORIZATION=f"Token {token}",
    )


def _token_of(user):
    return Token.objects.create(user=user).key


@pytest.fixture
def reserved(floor, ping):
    """A ping's live hold on an AZ agent, who has a login of their own."""
    answer = ping(AZ_PING).json()["data"]
    record = CallRecord.objects.get(request_id=answer["requestId"])
    agent, token = agent_with_token(record.agent.name)
    return agent, token, Reservation.objects.get(pk=record.reservation_id)


@pytest.mark.parametrize("role", ["Analysts", None], ids=["analyst", "staff-without-a-role"])
def test_it_refuses_a_staff_token_that_may_not_change_agents(api, make_staff, reserved, role):
    agent, _, reservation = reserved
    token = _token_of(make_staff("bea.bi-tool", role))

    answer = _set_offline(api, agent.pk, token)

    assert answer.status_code == 403
    body = answer.json()
    assert body == {
        "status": 403,
        "data": {
            "message": "This token may not change that agent's status.",
            "requestId": body["data"]["requestId"],
        },
    }
    agent.refresh_from_db()
    assert agent.status == "available" and agent.held_until == reservation.expires_at
    reservation.refresh_from_db()
    assert reservation.status == "active"
    assert not AgentStatusChange.objects.exists()


def test_an_analyst_gets_403_for_an_agent_that_does_not_exist_too(api, make_staff, db):
    token = _token_of(make_staff("bea.bi-tool", "Analysts"))

    answer = _set_offline(api, 999999, token)

    assert answer.status_code == 403  # not 404: ids are not probed by those who may not act


@pytest.mark.parametrize("who", ["operations", "superuser", "own-login"])
def test_it_lets_operations_a_superuser_and_the_agents_own_login_set_it_offline(
    api, make_staff, reserved, who
):
    agent, own_token, reservation = reserved
    if who == "operations":
        user = make_staff("olivia.ops", "Operations")
    elif who == "superuser":
        user = User.objects.create_superuser(username="root", password="x" * 20)
    else:
        user = agent.user
    token = own_token if who == "own-login" else _token_of(user)

    answer = _set_offline(api, agent.pk, token)

    assert answer.status_code == 200
    assert answer.json()["data"]["releasedReservations"] == 1
    reservation.refresh_from_db()
    assert (reservation.status, reservation.released_by_id) == ("released", user.pk)
    change = AgentStatusChange.objects.get(agent=agent)
    assert (change.from_status, change.to_status, change.changed_by_id, change.source) == (
        "available",
        "offline",
        user.pk,
        "api",
    )


def test_an_operations_user_may_change_an_agent_that_is_not_their_own(api, make_staff):
    token = _token_of(make_staff("olivia.ops", "Operations"))
    other = AgentFactory(licensed_states=["CA"])

    assert _set_offline(api, other.pk, token).status_code == 200
    assert Agent.objects.get(pk=other.pk).status == "offline"
