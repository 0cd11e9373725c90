"""With TWILIO_AUTH_TOKEN set, only requests the carrier signed are heard."""

from telephony_support import Carrier
from twilio.request_validator import RequestValidator

from calls.models import InboundCall
from routing.models import Reservation

PING = {
    "vendorKey": "6ab36a94-5dfb-4336-a559-63da6a5a26d2",
    "phoneNumber": "+14801234567",
    "stateCode": "AZ",
}


def test_it_refuses_a_forged_signature_with_403_and_changes_nothing(demo, ping, carrier, client):
    ping(PING)
    forger = Carrier(client, token="not-the-auth-token")

    answer = forger.voice(sid="CA400", to="+18775703926")

    assert (answer.status_code, answer.content) == (403, b"Invalid signature.")
    assert not InboundCall.objects.exists()
    assert Reservation.objects.get().status == Reservation.Status.ACTIVE


def test_it_refuses_an_unsigned_request_and_a_signature_over_other_parameters(
    demo, carrier, client
):
    unsigned = client.post(
        "/telephony/voice",
        data="CallSid=CA401&To=%2B18775703926",
        content_type="application/x-www-form-urlencoded",
    )
    signed_for_other = carrier.post(
        "/telephony/status",
        {"CallSid": "CA401", "CallStatus": "completed"},
        signature=carrier_signature(carrier, "/telephony/status", {"CallSid": "CA999"}),
    )

    assert (unsigned.status_code, signed_for_other.status_code) == (403, 403)
    assert not InboundCall.objects.exists()


def test_it_checks_the_signature_against_the_public_url_behind_a_proxy(demo, client, settings):
    settings.TWILIO_AUTH_TOKEN = "proxy-token"
    settings.TELEPHONY_PUBLIC_BASE_URL = "https://calls.example.com"
    public = Carrier(client, token="proxy-token", base="https://calls.example.com")
    internal = Carrier(client, token="proxy-token", base="http://testserver")

    assert public.voice(sid="CA402", to="+18775703926").status_code == 200
    assert internal.voice(sid="CA403", to="+18775703926").status_code == 403
    assert list(InboundCall.objects.values_list("call_sid", flat=True)) == ["CA402"]


def test_it_hears_unsigned_requests_when_no_auth_token_is_set(demo, client, settings):
    settings.TWILIO_AUTH_TOKEN = ""
    answer = client.post(
        "/telephony/voice",
        data="CallSid=CA404&To=%2B18775703926&From=%2B14801234567",
        content_type="application/x-www-form-urlencoded",
    )

    assert answer.status_code == 200
    assert InboundCall.objects.get().call_sid == "CA404"


def carrier_signature(carrier, path, params):
    return RequestValidator(carrier.token).compute_signature(carrier.base + path, params)
