"""/metrics: pings by outcome and status, ping latency, and routing gauges read at scrape time."""

import ipaddress

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ALL_STATES_KEY, DEMO_KEY

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


def test_it_counts_each_ping_by_outcome_and_status(client, demo, ping, api):
    before = scrape(client)
    assert ping({"vendorKey": DEMO_KEY, "phoneNumber": "4805550100"}).status_code == 200
    assert ping({"vendorKey": DEMO_KEY, "phoneNumber": "4805550100"}).status_code == 200
    assert ping({"vendorKey": DEMO_KEY}).status_code == 200
    assert ping({"vendorKey": DEMO_KEY, "phoneNumber": "5125550100"}).status_code == 403
    assert ping({"vendorKey": UNKNOWN_KEY}).status_code == 401
    assert ping({"vendorKey": DEMO_KEY, "phoneNumber": "12"}).status_code == 400
    assert ping("[1]").status_code == 400
    assert api.get("/functions/v1/vendors-ping").status_code == 405
    for phone in ("4805550101", "4805550102"):
        ping({"vendorKey": DEMO_KEY, "phoneNumber": phone})
    assert (
        ping({"vendorKey": DEMO_KEY, "phoneNumber": "4805550103"}).json()["data"]["agentAvailable"]
        is False
    )
    after = scrape(client)

    expected = {
        ("reserved", 200): 3,
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


def test_it_reads_free_agents_and_live_reservations_from_the_database(client, demo, ping):
    ping({"vendorKey": DEMO_KEY, "phoneNumber": "4805550100"})
    ping({"vendorKey": ALL_STATES_KEY, "phoneNumber": "5125550100"})
    samples = scrape(client)
    free = {
        dict(labels)["state"]: value
        for (name, labels), value in samples.items()
        if name == "callrouting_agents_free"
    }
    assert free == {"AZ": 2, "CA": 3, "TX": 9}
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
