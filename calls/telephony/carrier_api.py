"""What we ask of the carrier ourselves, through its REST API (everything else is its webhooks).

One thing so far: redirect a live call to a URL of ours, whose TwiML then replaces what the call
was doing (here: taking a caller out of the queue to their agent). The class that does it is
the setting TELEPHONY_CARRIER_API, like Django's EMAIL_BACKEND: Twilio's REST API by default, a
recording fake in the tests (tests/calls/telephony_support.py), since no carrier is reachable
from them.
"""

import logging
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)

# Seconds a request to the carrier's API may take: it runs after a webhook's or a status
# change's transaction has committed, before that request is answered.
API_TIMEOUT_SECONDS = 5


class CarrierApi(Protocol):
    def call_redirect(self, *, call_sid: str, url: str) -> bool:
        """Point the live call at `url` (POST). Whether the carrier was asked."""
        ...


class TwilioRestApi:
    """Twilio's REST API (Telnyx's and SignalWire's TwiML-compatible APIs take the same
    request), with TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN. Without an account SID it asks
    nothing: the caller then leaves the queue at their next wait request."""

    def call_redirect(self, *, call_sid: str, url: str) -> bool:
        if not (settings.TWILIO_ACCOUNT_SID and settings.TWILIO_AUTH_TOKEN):
            return False
        from twilio.http.http_client import TwilioHttpClient
        from twilio.rest import Client

        client = Client(
            settings.TWILIO_ACCOUNT_SID,
            settings.TWILIO_AUTH_TOKEN,
            http_client=TwilioHttpClient(timeout=API_TIMEOUT_SECONDS),
        )
        client.calls(call_sid).update(url=url, method="POST")
        logger.info("Redirected call %s to %s", call_sid, url)
        return True


def carrier_api() -> CarrierApi:
    return import_string(settings.TELEPHONY_CARRIER_API)()
