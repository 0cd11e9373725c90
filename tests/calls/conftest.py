import pytest
from telephony_support import AUTH_TOKEN, Carrier


@pytest.fixture
def carrier(client, settings):
    settings.TWILIO_AUTH_TOKEN = AUTH_TOKEN
    settings.TELEPHONY_PUBLIC_BASE_URL = ""
    settings.TELEPHONY_OVERFLOW_NUMBER = ""
    settings.TELEPHONY_MAX_AGENT_TRIES = 3
    settings.TELEPHONY_DIAL_TIMEOUT_SECONDS = 20
    return Carrier(client)
