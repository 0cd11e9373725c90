"""Agents go available or offline, from their page or a dialer's API; offline frees their holds."""

import pytest
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from telephony_support import agent_with_token, dial_twiml

from calls.models import CallRecord, InboundCall
from routing.models import Agent, Reservation
from tests.factories import VendorFactory, floor_build

KEY = "c4e7a1f0-6b2d-4e93-8a5c-0f1d2e3b4a59"
PING = {
    "vendorKey": KEY,
    "phoneNumber": "+14801234567",
    "stateCode": "AZ",
    "lead_id": "L-12345",
    "ad_url": "https://example.com/offer",
}


@pytest.fixture
def floor(db):
    """Acme Leads, a vendor for AZ with KEY; three agents licensed for AZ, one for CA, one for
    TX; five transfer numbers."""
    VendorFactory.with_key(name="Acme Leads", authorized_states=["AZ"], key=KEY)
    return floor_build(agents={"AZ": 3, "CA": 1, "TX": 1}, numbers=5)


def _status(api, agent_id, body, token=None):
    headers = {"HTTP_AUTHORIZATION": f"Token {token}"} if token else {}
    return api.post(f"/api/v1/agents/{agent_id}/status", body, format="json", **headers)


def test_it_releases_the_reservation_of_an_agent_going_offline_through_the_api(
    floor, ping, api, carrier
):
    first = ping(PING).json()["data"]
    record = CallRecord.objects.get(request_id=first["requestId"])
    agent, token = agent_with_token(record.agent.name)

    answer = _status(api, agent.pk, {"status": "offline"}, token)

    assert answer.status_code == 200
    body = answer.json()
    assert body == {
        "status": 200,
        "data": {
            "agentId": agent.pk,
            "status": "offline",
            "releasedReservations": 1,
            "requestId": body["data"]["requestId"],
        },
    }
    reservation = Reservation.objects.get(pk=record.reservation_id)
    assert (reservation.status, reservation.released_by_id) == ("released", agent.user_id)
    agent.refresh_from_db()
    assert (agent.status, agent.held_until) == ("offline", None)
    # Nobody is sent to the empty seat: the transferred call reaches another AZ agent.
    others = Agent.objects.licensed_for("AZ").exclude(pk=agent.pk).order_by("idle_since", "id")
    call = carrier.voice(sid="CA500", to=first["transferTarget"])
    assert call.content.decode() == dial_twiml(others[0].destination, 1)
    inbound = InboundCall.objects.get(call_sid="CA500")
    assert (inbound.match, inbound.call_record_id) == ("late", record.pk)
    ping_after = ping({**PING, "phoneNumber": "+14805550123"}).json()["data"]
    # All the AZ agents but one offline and one on the call.
    assert ping_after["agentCount"] == len(floor.agents["AZ"]) - 2


def test_it_restarts_the_idle_clock_when_an_agent_comes_available(floor, api):
    agent, token = agent_with_token(floor.agents["AZ"][0].name)
    _status(api, agent.pk, {"status": "offline"}, token)
    before = Agent.objects.get(pk=agent.pk).idle_since

    back = _status(api, agent.pk, {"status": "available"}, token)
    again = _status(api, agent.pk, {"status": "available"}, token)

    assert (back.status_code, again.status_code) == (200, 200)
    assert back.json()["data"]["releasedReservations"] == 0
    agent.refresh_from_db()
    assert agent.status == "available" and agent.idle_since > before
    assert Agent.objects.get(pk=agent.pk).idle_since == agent.idle_since


def test_it_refuses_a_missing_token_another_agents_token_and_a_bad_status(floor, api):
    agent, token = agent_with_token(floor.agents["AZ"][0].name)
    other = floor.agents["AZ"][1]

    missing = _status(api, agent.pk, {"status": "offline"})
    wrong = _status(api, agent.pk, {"status": "offline"}, "0" * 40)
    someone_else = _status(api, other.pk, {"status": "offline"}, token)
    bad = _status(api, agent.pk, {"status": "lunch"}, token)

    assert missing.status_code == 401
    assert missing.json()["data"]["message"] == "Authentication credentials were not provided."
    assert (wrong.status_code, wrong.json()["data"]["message"]) == (401, "Invalid token.")
    assert someone_else.status_code == 403
    assert someone_else.json()["data"]["message"] == (
        "This token may not change that agent's status."
    )
    assert bad.status_code == 400
    assert bad.json()["data"]["message"] == '"lunch" is not a valid choice.'
    assert not Agent.objects.filter(status="offline").exists()


def test_it_lets_operations_change_any_agent_and_tells_them_of_an_unknown_one(
    floor, api, make_staff
):
    token = Token.objects.create(user=make_staff("olivia.ops", "Operations")).key
    (agent,) = floor.agents["CA"]

    changed = _status(api, agent.pk, {"status": "offline"}, token)
    unknown = _status(api, 999999, {"status": "offline"}, token)

    assert changed.json()["data"]["status"] == "offline"
    assert (unknown.status_code, unknown.json()["data"]["message"]) == (404, "Agent not found.")


def test_the_agent_page_pops_the_reserved_call_with_the_vendors_tracking_data(floor, ping, client):
    first = ping(PING).json()["data"]
    agent, _ = agent_with_token(CallRecord.objects.get(request_id=first["requestId"]).agent.name)
    client.force_login(agent.user)

    page = client.get("/agent/")

    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="reservation"' in html
    for shown in ("Acme Leads", "+14801234567", "L-12345", "https://example.com/offer"):
        assert shown in html
    assert 'value="offline"' in html


def test_the_agent_page_shows_the_call_on_the_line(floor, ping, client, carrier):
    first = ping(PING).json()["data"]
    agent, _ = agent_with_token(CallRecord.objects.get(request_id=first["requestId"]).agent.name)
    carrier.voice(sid="CA501", to=first["transferTarget"], caller="+16025550100")
    client.force_login(agent.user)

    html = client.get("/agent/").content.decode()

    assert 'id="current-call"' in html and 'id="reservation"' not in html
    for shown in ("+16025550100", "L-12345", "differs from caller id"):
        assert shown in html


def test_the_agent_page_buttons_go_offline_and_back(floor, ping, client):
    first = ping(PING).json()["data"]
    record = CallRecord.objects.get(request_id=first["requestId"])
    agent, _ = agent_with_token(record.agent.name)
    client.force_login(agent.user)

    offline = client.post("/agent/status", {"status": "offline"})

    assert (offline.status_code, offline["Location"]) == (302, "/agent/")
    assert Reservation.objects.get(pk=record.reservation_id).status == "released"
    assert Agent.objects.get(pk=agent.pk).status == "offline"
    assert 'value="available"' in client.get("/agent/").content.decode()
    client.post("/agent/status", {"status": "available"})
    assert Agent.objects.get(pk=agent.pk).status == "available"


def test_the_agent_page_asks_for_a_login_and_refuses_users_who_are_not_agents(floor, client):
    assert client.get("/agent/")["Location"] == "/agent/login/?next=/agent/"
    client.force_login(get_user_model().objects.create_user(username="analyst"))
    assert client.get("/agent/").status_code == 403


def test_an_agent_can_sign_in_on_the_login_page(floor, client):
    (tx_agent,) = floor.agents["TX"]
    agent, _ = agent_with_token(tx_agent.name)
    agent.user.set_password("a long enough password")
    agent.user.save()

    signed_in = client.post(
        "/agent/login/", {"username": agent.user.username, "password": "a long enough password"}
    )

    assert (signed_in.status_code, signed_in["Location"]) == (302, "/agent/")
    assert tx_agent.name in client.get("/agent/").content.decode()
