"""With TWILIO_AUTH_TOKEN set, only requests the carrier signed are heard."""

import logging

import pytest
from telephony_support import OVERFLOW, Carrier
from twilio.request_validator import RequestValidator

from calls.models import InboundCall
from routing.models import Reservation
from tests.conftest import AZ_PING
from tests.factories import AgentFactory, TransferNumberFactory, VendorFactory

TRANSFER_NUMBER = "+18775703926"


@pytest.fixture
def floor(db):
    """A vendor for AZ whose key AZ_PING sends, an agent licensed for AZ, and TRANSFER_NUMBER,
    the one number a ping can be given."""
    VendorFactory.with_key(authorized_states=["AZ"], key=AZ_PING["vendorKey"])
    AgentFactory(licensed_states=["AZ"])
    TransferNumberFactory(number=TRANSFER_NUMBER)


def test_it_refuses_a_forged_signature_with_403_and_changes_nothing(floor, ping, carrier, client):
    ping(AZ_PING)
    forger = Carrier(client, token="not-the-auth-token")

    answer = forger.voice(sid="CA400", to=TRANSFER_NUMBER)

    assert (answer.status_code, answer.content) == (403, b"Invalid signature.")
    assert not InboundCall.objects.exists()
    assert Reservation.objects.get().status == Reservation.Status.ACTIVE


def test_it_refuses_an_unsigned_request_and_a_signature_over_other_parameters(
    floor, carrier, client
):
    unsigned = client.post(
        "/telephony/voice",
        data=f"CallSid=CA401&To=%2B{TRANSFER_NUMBER[1:]}",
        content_type="application/x-www-form-urlencoded",
    )
    signed_for_other = carrier.post(
        "/telephony/status",
        {"CallSid": "CA401", "CallStatus": "completed"},
        signature=carrier_signature(carrier, "/telephony/status", {"CallSid": "CA999"}),
    )

    assert (unsigned.status_code, signed_for_other.status_code) == (403, 403)
    assert not InboundCall.objects.exists()


def test_it_checks_the_signature_against_the_public_url_behind_a_proxy(floor, client, settings):
    settings.TWILIO_AUTH_TOKEN = "proxy-token"
    settings.TELEPHONY_PUBLIC_BASE_URL = "https://calls.example.com"
    public = Carrier(client, token="proxy-token", base="https://calls.example.com")
    internal = Carrier(client, token="proxy-token", base="http://testserver")

    assert public.voice(sid="CA402", to=TRANSFER_NUMBER).status_code == 200
    assert internal.voice(sid="CA403", to=TRANSFER_NUMBER).status_code == 403
    assert list(InboundCall.objects.values_list("call_sid", flat=True)) == ["CA402"]


def test_it_hears_unsigned_requests_when_no_auth_token_is_set(floor, client, settings):
    settings.TWILIO_AUTH_TOKEN = ""
    answer = client.post(
        "/telephony/voice",
        data=f"CallSid=CA404&To=%2B{TRANSFER_NUMBER[1:]}&From=%2B14801234567",
        content_type="application/x-www-form-urlencoded",
    )

    assert answer.status_code == 200
    assert InboundCall.objects.get().call_sid == "CA404"


def test_it_refuses_a_form_it_cannot_read_instead_of_sending_the_caller_to_the_overflow(
    floor, carrier, settings, caplog
):
    settings.TELEPHONY_OVERFLOW_NUMBER = OVERFLOW
    too_many = {"CallSid": "CA405", "To": TRANSFER_NUMBER} | {f"F{n}": "x" for n in range(1000)}
    too_big = {"CallSid": "CA406", "To": TRANSFER_NUMBER, "Pad": "x" * (3 * 1024 * 1024)}

    with caplog.at_level(logging.WARNING):
        forged = carrier.post("/telephony/voice", too_many, signature="anything")
        signed = carrier.post("/telephony/voice", too_many)
        big = carrier.post("/telephony/voice", too_big, signature="anything")
        query = "&".join(f"q{n}=x" for n in range(1001))
        long_query = carrier.post(f"/telephony/status?{query}", {"CallSid": "CA407"})
        settings.TWILIO_AUTH_TOKEN = ""
        unsigned = carrier.post("/telephony/voice", too_many, signature="")

    for answer in (forged, signed, big, long_query, unsigned):
        assert (answer.status_code, answer.content) == (400, b"Unreadable form.")
    assert not InboundCall.objects.exists()
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


def test_it_refuses_a_request_whose_url_cannot_be_checked(floor, carrier, settings, caplog):
    # Django lets any port through; the signature check cannot parse one out of range.
    settings.TELEPHONY_OVERFLOW_NUMBER = OVERFLOW
    with caplog.at_level(logging.WARNING):
        answer = carrier.client.post(
            "/telephony/voice",
            data=f"CallSid=CA408&To=%2B{TRANSFER_NUMBER[1:]}",
            content_type="application/x-www-form-urlencoded",
            HTTP_HOST="testserver:99999",
            HTTP_X_TWILIO_SIGNATURE="anything",
        )

    assert (answer.status_code, answer.content) == (403, b"Invalid signature.")
    assert not InboundCall.objects.exists()
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


def carrier_signature(carrier, path, params):
    return RequestValidator(carrier.token).compute_signature(carrier.base + path, params)
