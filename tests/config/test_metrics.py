"""/metrics: pings by outcome and status, ping latency, and routing gauges read at scrape time."""

import ipaddress

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ALL_STATES_KEY, DEMO_KEY
from tests.factories import VendorFactory, floor_build

UNKNOWN_KEY = "00000000-0000-4000-8000-000000000000"


def scrape(client, **extra) -> dict:
    response = client.get("/metrics", **extra)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def pings(samples, outcome, status) -> float:
    return samples.get(
        ("callrouting_pings_total", (("outcome", outcome), ("status", str(status)))), 0.0
    )


def observed(samples, outcome) -> float:
    return samples.get(("callrouting_ping_duration_seconds_count", (("outcome", outcome),)), 0.0)


@pytest.fixture
def floor(db):
    """A vendor for AZ and CA with DEMO_KEY, one for every state with ALL_STATES_KEY; three
    agents licensed for AZ, two for CA, four for TX; ten transfer numbers."""
    VendorFactory.with_key(authorized_states=["AZ", "CA"], key=DEMO_KEY)
    VendorFactory.with_key(all_states=True, key=ALL_STATES_KEY)
    return floor_build(agents={"AZ": 3, "CA": 2, "TX": 4}, numbers=10)


def test_it_counts_each_ping_by_outcome_and_status(client, floor, ping, api):
    az_agents = len(floor.agents["AZ"])
    before = scrape(client)
    assert ping({"vendorKey": DEMO_KEY, "phoneNumber": "4805550100"}).status_code == 200
    assert ping({"vendorKey": DEMO_KEY, "phoneNumber": "4805550100"}).status_code == 200
    assert ping({"vendorKey": DEMO_KEY}).status_code == 200
    assert ping({"vendorKey": DEMO_KEY, "phoneNumber": "5125550100"}).status_code == 403
    assert ping({"vendorKey": UNKNOWN_KEY}).status_code == 401
    assert ping({"vendorKey": DEMO_KEY, "phoneNumber": "12"}).status_code == 400
    assert ping("[1]").status_code == 400
    assert api.get("/functions/v1/vendors-ping").status_code == 405
    for index in range(1, az_agents):  # the other AZ agents
        ping({"vendorKey": DEMO_KEY, "phoneNumber": f"480555010{index}"})
    no_agent = ping({"vendorKey": DEMO_KEY, "phoneNumber": f"480555010{az_agents}"})
    assert no_agent.json()["data"]["agentAvailable"] is False
    after = scrape(client)

    expected = {
        ("reserved", 200): az_agents,
        ("repeat", 200): 1,
        ("no_agent", 200): 1,
        ("key_validation", 200): 1,
        ("rejected", 403): 1,
        ("refused", 401): 1,
        ("refused", 400): 2,
        ("refused", 405): 1,
    }
    for (outcome, status), count in expected.items():
        assert pings(after, outcome, status) - pings(before, outcome, status) == count, outcome
    for outcome in ("reserved", "repeat", "no_agent", "key_validation", "rejected", "refused"):
        expected_count = sum(n for (o, _), n in expected.items() if o == outcome)
        assert observed(after, outcome) - observed(before, outcome) == expected_count, outcome


def test_it_reads_free_agents_and_live_reservations_from_the_database(client, floor, ping):
    ping({"vendorKey": DEMO_KEY, "phoneNumber": "4805550100"})
    ping({"vendorKey": ALL_STATES_KEY, "phoneNumber": "5125550100"})
    samples = scrape(client)
    free = {
        dict(labels)["state"]: value
        for (name, labels), value in samples.items()
        if name == "callrouting_agents_free"
    }
    # One agent held in AZ and one in TX.
    held = {"AZ": 1, "TX": 1}
    assert free == {
        state: len(agents) - held.get(state, 0) for state, agents in floor.agents.items()
    }
    assert samples[("callrouting_reservations_live", ())] == 2
    assert samples[("callrouting_metrics_database_up", ())] == 1


def test_it_hides_the_metrics_from_other_addresses(client, db):
    response = client.get("/metrics", REMOTE_ADDR="203.0.113.9")
    assert response.status_code == 403
    assert b"callrouting" not in response.content


def test_it_answers_an_allowed_network(client, db, settings):
    settings.METRICS_ALLOWED_NETWORKS = [ipaddress.ip_network("10.0.0.0/8")]
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403


@pytest.mark.parametrize(
    ("header", "status"),
    [("Bearer s3cret-scrape-token", 200), ("Bearer wrong", 403), ("s3cret-scrape-token", 403)],
)
def test_it_answers_any_address_with_the_bearer_token(client, db, settings, header, status):
    settings.METRICS_BEARER_TOKEN = "s3cret-scrape-token"
    response = client.get("/metrics", REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION=header)
    assert response.status_code == status
