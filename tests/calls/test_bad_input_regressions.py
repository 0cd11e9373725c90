"""Bad input found while fuzzing and documenting the ping: each answers in the envelope."""

import io
import json
import random
import string

import pytest

from calls.models import CallRecord
from tests.conftest import AZ_PING, PING_URL
from tests.factories import VendorFactory, floor_build
from vendors.models import Vendor


def test_it_answers_413_to_a_body_over_djangos_own_limit(ping, settings):
    # Over DATA_UPLOAD_MAX_MEMORY_SIZE, reading the body raised RequestDataTooBig: a 500.
    body = b"x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
    response = ping(body)
    assert response.status_code == 413
    assert response.json() == {
        "status": 413,
        "data": {"message": "Request body too large.", "requestId": response["X-Request-ID"]},
    }


def test_it_answers_405_in_the_envelope_to_every_other_method(api):
    for method in ("get", "put", "patch", "delete", "options"):
        response = getattr(api, method)(PING_URL)
        assert response.status_code == 405, method
        assert response["Allow"] == "POST"
        assert response.json() == {
            "status": 405,
            "data": {
                "message": "Method not allowed. Use POST.",
                "requestId": response["X-Request-ID"],
            },
        }


@pytest.fixture
def floor(db):
    """Acme Leads, a vendor for AZ whose key AZ_PING sends; an agent licensed for AZ, a number."""
    VendorFactory.with_key(name="Acme Leads", authorized_states=["AZ"], key=AZ_PING["vendorKey"])
    return floor_build(agents={"AZ": 1}, numbers=1)


# Random letters, so PostgreSQL cannot compress them under its index entry limit (2,704 bytes).
LONG_LEAD_ID = "".join(random.Random(7).choices(string.ascii_letters + string.digits, k=6000))


@pytest.mark.parametrize("vendor_active", [True, False], ids=["reserved", "rejected"])
def test_it_records_a_lead_id_too_long_for_an_index_entry(floor, ping, vendor_active):
    # The lead_id index held the whole text: PostgreSQL refused the call record's insert (500).
    Vendor.objects.filter(name="Acme Leads").update(is_active=vendor_active)

    response = ping({**AZ_PING, "lead_id": LONG_LEAD_ID})

    assert response.status_code == (200 if vendor_active else 403)
    assert CallRecord.objects.get().tracking == {"lead_id": LONG_LEAD_ID}


def chunked(body: bytes) -> dict:
    """What a server such as gunicorn passes on for a body sent with Transfer-Encoding: chunked:
    no Content-Length, and the body de-chunked in the input stream."""
    return {
        "CONTENT_LENGTH": "",
        "HTTP_TRANSFER_ENCODING": "chunked",
        "wsgi.input": io.BytesIO(body),
        "wsgi.input_terminated": True,
    }


def test_it_reads_a_body_sent_in_chunks(floor, ping):
    # Django reads no body without a Content-Length: this was a 400 "must be a JSON object".
    body = json.dumps({**AZ_PING, "lead_id": "L-9"}).encode()

    response = ping(body, **chunked(body))

    assert response.status_code == 200
    assert response.json()["data"]["agentAvailable"] is True
    assert CallRecord.objects.get().tracking == {"lead_id": "L-9"}


def test_it_answers_413_to_a_body_in_chunks_over_the_limit(floor, ping, settings):
    body = json.dumps({**AZ_PING, "pad": "x" * settings.PING_MAX_BODY_BYTES}).encode()

    response = ping(body, **chunked(body))

    assert response.status_code == 413
    assert CallRecord.objects.count() == 0
