"""An agent's destination is stored as the carrier dials it: E.164 or a sip: address. A number
typed as people write it is normalized; anything else is refused with a message."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from routing.destinations import INVALID_DESTINATION, normalize_destination
from routing.models import Agent

pytestmark = pytest.mark.django_db


def agent_form(**fields):
    return {
        "name": "Ada Agent",
        "status": "available",
        "destination": "sip:ada@example.com",
        "wrap_up_seconds": "0",
        "licensed_states": ["AZ"],
        **fields,
    }


def test_the_admin_saves_a_us_number_typed_with_parentheses_in_e164(operations_client):
    response = operations_client.post(
        "/admin/routing/agent/add/", agent_form(destination="(305) 555-0199")
    )

    assert response.status_code == 302
    assert Agent.objects.get(name="Ada Agent").destination == "+13055550199"


def test_the_admin_refuses_a_destination_that_is_neither_a_number_nor_sip(operations_client):
    added = operations_client.post("/admin/routing/agent/add/", agent_form(destination="hello"))

    assert added.status_code == 200
    assert added.context["adminform"].form.errors["destination"] == [INVALID_DESTINATION]
    assert INVALID_DESTINATION in added.content.decode()
    assert not Agent.objects.exists()


def test_the_change_form_normalizes_and_refuses_alike(operations_client):
    agent = Agent.objects.create(name="Ada Agent", destination="sip:ada@example.com")
    url = f"/admin/routing/agent/{agent.pk}/change/"

    refused = operations_client.post(url, agent_form(destination="sip:ada"))
    assert refused.status_code == 200
    assert Agent.objects.get(pk=agent.pk).destination == "sip:ada@example.com"

    saved = operations_client.post(url, agent_form(destination="+1 480.123.4567"))
    assert saved.status_code == 302
    assert Agent.objects.get(pk=agent.pk).destination == "+14801234567"


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("+13055550199", "+13055550199"),
        ("1-305-555-0199", "+13055550199"),
        ("305.555.0199", "+13055550199"),
        # The NANP rule, not libphonenumber's: exchange 123 is a number the guide itself uses.
        ("(480) 123-4567", "+14801234567"),
        ("800-555-0199", "+18005550199"),
        ("+1 416 555 0123", "+14165550123"),
        ("+44 20 7183 8750", "+442071838750"),
        ("SIP:ada@example.com", "sip:ada@example.com"),
        (" sip:ada@10.0.0.1:5060;transport=tls ", "sip:ada@10.0.0.1:5060;transport=tls"),
    ],
)
def test_it_stores_each_way_of_writing_a_destination_as_the_carrier_dials_it(typed, stored):
    assert normalize_destination(typed) == stored


@pytest.mark.parametrize(
    "typed", ["hello", "", "sip:", "sip:ada", "sip:a da@example.com", "555-0199", "+1234", "12345"]
)
def test_it_refuses_what_cannot_be_dialled(typed):
    with pytest.raises(ValueError, match="Enter a phone number"):
        normalize_destination(typed)


@pytest.mark.django_db(transaction=True)
def test_the_migration_normalizes_the_destinations_it_can_and_leaves_the_rest():
    before = [("routing", "0006_agent_status_changes")]
    after = [("routing", "0007_agent_destinations_normalized")]
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    try:
        executor.migrate(before)
        old_agent = executor.loader.project_state(before).apps.get_model("routing", "Agent")
        for name, destination in [
            ("Typed", "(305) 555-0199"),
            ("Shouted", "SIP:ada@example.com"),
            ("Fine", "+14801234567"),
            ("Nonsense", "hello"),
        ]:
            old_agent.objects.create(name=name, destination=destination)

        executor = MigrationExecutor(connection)
        executor.migrate(after)
        migrated_agent = executor.loader.project_state(after).apps.get_model("routing", "Agent")
        destinations = dict(migrated_agent.objects.values_list("name", "destination"))
    finally:
        # The later migrations too, so the tests after this one find the schema they expect.
        MigrationExecutor(connection).migrate(latest)

    assert destinations == {
        "Typed": "+13055550199",
        "Shouted": "sip:ada@example.com",
        "Fine": "+14801234567",
        "Nonsense": "hello",
    }
