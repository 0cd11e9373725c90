"""Agents in the staff admin: licensed states as a grid, status at a glance, bulk status."""

import re
from datetime import timedelta

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.utils import timezone
from django.utils.html import strip_tags

from routing.allocation import reservation_create
from routing.models import Agent, AgentLicense, TransferNumber
from vendors.models import Vendor

pytestmark = pytest.mark.django_db


def agent_form(**fields):
    return {
        "name": "Ada Agent",
        "status": "available",
        "destination": "sip:ada@example.com",
        "wrap_up_seconds": "0",
        **fields,
    }


def shown(response, field):
    """What an admin change page shows for a read-only field."""
    html = response.content.decode()
    return strip_tags(
        re.search(rf'field-{field}">.*?<div class="readonly">(.*?)</div>', html, re.S)[1]
    )


def test_it_saves_the_ticked_states_as_licence_rows(operations_client):
    response = operations_client.post(
        "/admin/routing/agent/add/", agent_form(licensed_states=["TX", "AZ"])
    )
    assert response.status_code == 302
    agent = Agent.objects.get(name="Ada Agent")
    assert list(agent.licenses.values_list("state", flat=True)) == ["AZ", "TX"]

    page = operations_client.get(f"/admin/routing/agent/{agent.pk}/change/").content.decode()
    checked = re.findall(r'name="licensed_states" value="(\w\w)"[^>]*checked', page)
    assert checked == ["AZ", "TX"]

    response = operations_client.post(
        f"/admin/routing/agent/{agent.pk}/change/", agent_form(licensed_states=["CA", "TX"])
    )
    assert response.status_code == 302
    assert list(AgentLicense.objects.filter(agent=agent).values_list("state", flat=True)) == [
        "CA",
        "TX",
    ]
    assert LogEntry.objects.filter(object_id=str(agent.pk), action_flag=CHANGE).exists()


def test_it_lists_each_agent_with_status_states_and_what_holds_them(operations_client):
    now = timezone.now()
    free = Agent.objects.create(name="Fay Free", destination="sip:f@example.com")
    free.licenses.create(state="NV")
    held = Agent.objects.create(
        name="Hal Held", destination="sip:h@example.com", idle_since=now - timedelta(hours=1)
    )
    held.licenses.create(state="AZ")
    held.licenses.create(state="CA")
    Agent.objects.create(
        name="Cal Oncall", destination="sip:c@example.com", on_call_since=now, status="available"
    )
    Agent.objects.create(name="Otto Offline", destination="sip:o@example.com", status="offline")
    TransferNumber.objects.create(number="+18775703926")
    vendor = Vendor.objects.create(name="Acme", authorized_states=["AZ"])
    reservation_create(
        vendor=vendor, phone_number="+14805550100", state="AZ", ttl_seconds=60, now=now
    )

    page = operations_client.get("/admin/routing/agent/").content.decode()
    assert "AZ, CA" in page
    until = f"{(now + timedelta(seconds=60)):%H:%M:%S} UTC"
    assert re.search(rf">reserved</span> <small>until {until}</small>", page)
    assert re.search(rf">on a call</span> <small>since {now:%H:%M:%S} UTC</small>", page)
    assert ">free</span>" in page
    assert ">offline</span>" in page

    found = operations_client.get("/admin/routing/agent/?q=hal").content.decode()
    assert "Hal Held" in found and "Fay Free" not in found


def test_the_actions_set_agents_offline_and_available_again(operations_client):
    long_ago = timezone.now() - timedelta(days=1)
    ada = Agent.objects.create(name="Ada", destination="sip:a@example.com", idle_since=long_ago)
    bob = Agent.objects.create(name="Bob", destination="sip:b@example.com", idle_since=long_ago)

    response = operations_client.post(
        "/admin/routing/agent/", {"action": "set_offline", "_selected_action": [ada.pk, bob.pk]}
    )
    assert response.status_code == 302
    assert set(Agent.objects.values_list("status", flat=True)) == {"offline"}
    assert Agent.objects.get(pk=ada.pk).idle_since == long_ago

    operations_client.post(
        "/admin/routing/agent/", {"action": "set_available", "_selected_action": [ada.pk]}
    )
    ada.refresh_from_db()
    assert ada.status == "available"
    assert ada.idle_since > long_ago  # coming available restarts the idle clock
    assert Agent.objects.get(pk=bob.pk).status == "offline"
    assert LogEntry.objects.filter(object_id=str(ada.pk), change_message="Set available").exists()


def test_an_analyst_cannot_run_the_agent_actions(analyst_client):
    ada = Agent.objects.create(name="Ada", destination="sip:a@example.com")
    response = analyst_client.post(
        "/admin/routing/agent/", {"action": "set_offline", "_selected_action": [ada.pk]}
    )
    assert response.status_code == 403
    assert Agent.objects.get(pk=ada.pk).status == "available"


def agent_with_a_live_reservation(name: str) -> tuple[Agent, object]:
    """An agent licensed for AZ, reserved by a ping a moment ago."""
    agent = Agent.objects.create(name=name, destination="sip:a@example.com")
    agent.licenses.create(state="AZ")
    TransferNumber.objects.create(number="+18775703926")
    vendor = Vendor.objects.create(name="Acme", authorized_states=["AZ"])
    reservation = reservation_create(
        vendor=vendor, phone_number="+14805550100", state="AZ", ttl_seconds=60, now=timezone.now()
    ).reservation
    return agent, reservation


def test_setting_an_agent_offline_releases_their_live_reservation(operations_client):
    agent, reservation = agent_with_a_live_reservation("Ada")

    response = operations_client.post(
        "/admin/routing/agent/", {"action": "set_offline", "_selected_action": [agent.pk]},
        follow=True,
    )  # fmt: skip
    assert "1 agent(s) set offline; 1 live reservation(s) released." in response.content.decode()
    reservation.refresh_from_db()
    assert reservation.status == "released"
    assert reservation.released_by.username == "olivia.ops"
    assert TransferNumber.objects.free(timezone.now()).count() == 1


def test_saving_the_change_form_with_status_offline_releases_the_live_reservation(
    operations_client,
):
    agent, reservation = agent_with_a_live_reservation("Ada Agent")
    held = f"reserved</span> <small>until {reservation.expires_at:%H:%M:%S} UTC"
    assert held in operations_client.get("/admin/routing/agent/").content.decode()

    response = operations_client.post(
        f"/admin/routing/agent/{agent.pk}/change/",
        agent_form(status="offline", licensed_states=["AZ"]),
        follow=True,
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "1 live reservation(s) released" in page

    agents = operations_client.get("/admin/routing/agent/").content.decode()
    assert held not in agents
    agent_page = operations_client.get(f"/admin/routing/agent/{agent.pk}/change/")
    assert shown(agent_page, "held_until") == "-"
    reservation_page = operations_client.get(f"/admin/routing/reservation/{reservation.pk}/change/")
    assert shown(reservation_page, "status") == "released"
    assert shown(reservation_page, "released_by") == "olivia.ops"
    held_now = operations_client.get("/admin/routing/reservation/").content.decode()
    assert "+14805550100" not in held_now
    agent.refresh_from_db()
    assert (agent.status, agent.held_until) == ("offline", None)
    assert TransferNumber.objects.free(timezone.now()).count() == 1


def test_saving_the_change_form_with_status_available_restarts_the_idle_clock(
    operations_client,
):
    long_ago = timezone.now() - timedelta(days=1)
    agent = Agent.objects.create(
        name="Ada Agent", destination="sip:ada@example.com", status="offline", idle_since=long_ago
    )

    response = operations_client.post(
        f"/admin/routing/agent/{agent.pk}/change/",
        agent_form(status="available", destination="sip:ada@example.org", licensed_states=["AZ"]),
    )
    assert response.status_code == 302
    agent.refresh_from_db()
    assert (agent.status, agent.destination) == ("available", "sip:ada@example.org")
    assert agent.idle_since > long_ago

    # Saving again without a change of status leaves the clock alone.
    idle_since = agent.idle_since
    operations_client.post(
        f"/admin/routing/agent/{agent.pk}/change/",
        agent_form(status="available", wrap_up_seconds="30", licensed_states=["AZ"]),
    )
    agent.refresh_from_db()
    assert (agent.wrap_up_seconds, agent.idle_since) == (30, idle_since)
