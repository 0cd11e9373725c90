"""Every change of an agent's status is recorded (who, when, from, to, through what), and staff
who may view agents read that history in the admin."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from routing.models import Agent, AgentStatusChange
from routing.services import agent_set_status

pytestmark = pytest.mark.django_db


def _history(agent):
    return list(
        AgentStatusChange.objects.filter(agent=agent)
        .order_by("id")
        .values_list("from_status", "to_status", "changed_by__username", "source")
    )


def test_the_admin_actions_record_each_change_with_the_staff_member(operations_client):
    ada = Agent.objects.create(name="Ada", destination="sip:a@example.com")
    bob = Agent.objects.create(name="Bob", destination="sip:b@example.com", status="offline")
    before = timezone.now()

    for action in ("set_offline", "set_available"):
        operations_client.post(
            "/admin/routing/agent/", {"action": action, "_selected_action": [ada.pk, bob.pk]}
        )

    assert _history(ada) == [
        ("available", "offline", "olivia.ops", "admin"),
        ("offline", "available", "olivia.ops", "admin"),
    ]
    # Bob was offline already: only his coming available is a change.
    assert _history(bob) == [("offline", "available", "olivia.ops", "admin")]
    at = AgentStatusChange.objects.filter(agent=ada).values_list("at", flat=True)
    assert all(before - timedelta(seconds=5) <= moment <= timezone.now() for moment in at)


def test_the_change_form_records_a_change_of_status_and_nothing_when_it_stays(operations_client):
    agent = Agent.objects.create(name="Ada Agent", destination="sip:ada@example.com")
    form = {"name": "Ada Agent", "destination": "sip:ada@example.com", "wrap_up_seconds": "0"}
    form["licensed_states"] = ["AZ"]

    operations_client.post(
        f"/admin/routing/agent/{agent.pk}/change/", {**form, "status": "offline"}
    )
    operations_client.post(
        f"/admin/routing/agent/{agent.pk}/change/", {**form, "status": "offline"}
    )

    assert _history(agent) == [("available", "offline", "olivia.ops", "admin")]


def test_the_agent_page_in_the_admin_shows_the_latest_changes(operations_client):
    agent = Agent.objects.create(name="Ada Agent", destination="sip:ada@example.com")
    operations_client.post(
        "/admin/routing/agent/", {"action": "set_offline", "_selected_action": [agent.pk]}
    )

    page = operations_client.get(f"/admin/routing/agent/{agent.pk}/change/")

    assert page.status_code == 200
    html = page.content.decode()
    cells = re.findall(r"<td>(.*?)</td>", html.split("field-status_history", 1)[1])
    assert cells[1:4] == ["available → offline", "olivia.ops", "staff admin"]
    assert f"/admin/routing/agentstatuschange/?agent__id__exact={agent.pk}" in html


def test_the_history_list_is_read_only_and_filters_by_agent(operations_client):
    ada = Agent.objects.create(name="Ada", destination="sip:a@example.com")
    bob = Agent.objects.create(name="Bob", destination="sip:b@example.com")
    operations_client.post(
        "/admin/routing/agent/", {"action": "set_offline", "_selected_action": [ada.pk, bob.pk]}
    )
    change = AgentStatusChange.objects.get(agent=ada)

    listing = operations_client.get(f"/admin/routing/agentstatuschange/?agent__id__exact={ada.pk}")
    detail = operations_client.get(f"/admin/routing/agentstatuschange/{change.pk}/change/")
    edit = operations_client.post(
        f"/admin/routing/agentstatuschange/{change.pk}/change/", {"to_status": "available"}
    )
    add = operations_client.get("/admin/routing/agentstatuschange/add/")
    delete = operations_client.post(
        f"/admin/routing/agentstatuschange/{change.pk}/delete/", {"post": "yes"}
    )

    assert listing.status_code == 200
    rows = listing.content.decode()
    assert ">Ada<" in rows and ">Bob<" not in rows and "olivia.ops" in rows
    assert detail.status_code == 200
    assert (edit.status_code, add.status_code, delete.status_code) == (403, 403, 403)
    assert AgentStatusChange.objects.get(pk=change.pk).to_status == "offline"


def test_an_analyst_sees_no_agent_history(analyst_client):
    agent = Agent.objects.create(name="Ada", destination="sip:a@example.com")
    agent_set_status(agent_id=agent.pk, status="offline", now=timezone.now(), source="system")

    assert analyst_client.get("/admin/routing/agentstatuschange/").status_code == 403
    assert "agentstatuschange" not in analyst_client.get("/admin/").content.decode()


def test_operations_can_still_delete_an_agent_that_has_a_history(operations_client):
    agent = Agent.objects.create(name="Ada", destination="sip:a@example.com")
    agent_set_status(agent_id=agent.pk, status="offline", now=timezone.now(), source="system")

    confirm = operations_client.get(f"/admin/routing/agent/{agent.pk}/delete/")
    deleted = operations_client.post(f"/admin/routing/agent/{agent.pk}/delete/", {"post": "yes"})

    assert "permission to delete" not in confirm.content.decode()
    assert deleted.status_code == 302
    assert not Agent.objects.filter(pk=agent.pk).exists()
    assert not AgentStatusChange.objects.exists()
