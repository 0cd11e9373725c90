"""Every curl example of the integration guide, replayed, gets the answer the guide shows.

These tests run on `seed_demo` on purpose: the guide's examples are written against the demo
data (its keys, its three agents in Arizona, its first transfer number), so the numbers they
assert come from the contract, not from a setup hidden from the test. Other tests build their
own rows with tests/factories.py."""

import re
import uuid

import pytest

from calls.models import CallRecord
from tests.conftest import ALL_STATES_KEY, DEMO_KEY

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

pytestmark = pytest.mark.usefixtures("demo")


def assert_request_id(response) -> str:
    request_id = response.json()["data"]["requestId"]
    assert str(uuid.UUID(request_id)) == request_id
    assert response["X-Request-ID"] == request_id
    return request_id


def test_it_answers_the_guides_ping_example_with_an_agent(ping):
    response = ping(
        {
            "vendorKey": DEMO_KEY,
            "phoneNumber": "+14801234567",
            "stateCode": "AZ",
            "lead_id": "L-12345",
            "ad_id": "SUMMER-2025",
            "ad_url": "https://example.com/offer",
            "source": "google",
        }
    )

    assert response.status_code == 200
    body = response.json()
    request_id = assert_request_id(response)
    assert TIMESTAMP.match(body["data"]["timestamp"])
    assert body == {
        "status": 200,
        "data": {
            "agentAvailable": True,
            "transferTarget": "+18775703926",
            "ttlSeconds": 60,
            "agentCount": 3,
            "timestamp": body["data"]["timestamp"],
            "requestId": request_id,
        },
    }
    assert list(body["data"]) == [
        "agentAvailable",
        "transferTarget",
        "ttlSeconds",
        "agentCount",
        "timestamp",
        "requestId",
    ]
    record = CallRecord.objects.get()
    assert str(record.request_id) == request_id
    assert record.tracking == {
        "lead_id": "L-12345",
        "ad_id": "SUMMER-2025",
        "ad_url": "https://example.com/offer",
        "source": "google",
    }


def test_it_answers_the_guides_key_validation_example(ping):
    response = ping({"vendorKey": DEMO_KEY})

    assert response.status_code == 200
    assert response.json() == {
        "status": 200,
        "data": {
            "vendorActive": True,
            "authorizedStates": ["AZ", "CA"],
            "requestId": assert_request_id(response),
        },
    }


def test_it_answers_all_for_a_vendor_authorized_everywhere(ping):
    response = ping({"vendorKey": ALL_STATES_KEY})

    assert response.json() == {
        "status": 200,
        "data": {
            "vendorActive": True,
            "authorizedStates": ["All"],
            "requestId": assert_request_id(response),
        },
    }


def test_it_answers_the_guides_unknown_key_example(ping):
    response = ping({"vendorKey": "00000000-0000-4000-8000-000000000000"})

    assert response.status_code == 401
    assert response.json() == {
        "status": 401,
        "data": {
            "message": "Vendor key was not found or not formatted correctly.",
            "requestId": assert_request_id(response),
        },
    }


def test_it_answers_the_guides_bad_phone_example(ping):
    response = ping({"vendorKey": DEMO_KEY, "phoneNumber": "12345"})

    assert response.status_code == 400
    assert response.json() == {
        "status": 400,
        "data": {
            "message": "Invalid phone number format. Please provide a valid US phone number.",
            "requestId": assert_request_id(response),
        },
    }


def test_it_answers_the_guides_no_agent_example(ping):
    for area_code in ("480", "602", "623"):
        assert ping({"vendorKey": DEMO_KEY, "phoneNumber": f"{area_code}5550100"}).json()["data"][
            "agentAvailable"
        ]

    response = ping({"vendorKey": DEMO_KEY, "phoneNumber": "5205550100"})

    body = response.json()
    assert response.status_code == 200
    assert TIMESTAMP.match(body["data"]["timestamp"])
    assert body == {
        "status": 200,
        "data": {
            "agentAvailable": False,
            "reason": "no_agent",
            "retryAfterSeconds": body["data"]["retryAfterSeconds"],
            "timestamp": body["data"]["timestamp"],
            "requestId": assert_request_id(response),
        },
    }
    # The three AZ agents are held for the TTL: the soonest hold ends within it.
    assert 59 <= body["data"]["retryAfterSeconds"] <= 60
