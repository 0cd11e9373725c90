"""`manage.py check --deploy`: telephony settings fine on a laptop and unsafe in service."""

from django.conf import settings
from django.core import checks


@checks.register(checks.Tags.security, deploy=True)
def telephony_webhooks_signed(app_configs, **kwargs) -> list[checks.CheckMessage]:
    if settings.TWILIO_AUTH_TOKEN:
        return []
    return [
        checks.Warning(
            "TWILIO_AUTH_TOKEN is empty: telephony webhooks are heard unsigned, so anyone can "
            "fake a call arriving, end calls or take agents offline.",
            hint="Set it to the carrier account's auth token (docs/telephony.md).",
            id="calls.W001",
        )
    ]
