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


@checks.register(deploy=True)
def telephony_queue_redirects(app_configs, **kwargs) -> list[checks.CheckMessage]:
    if not settings.TELEPHONY_QUEUE_MAX_WAIT_SECONDS or (
        settings.TWILIO_ACCOUNT_SID and settings.TELEPHONY_PUBLIC_BASE_URL
    ):
        return []
    return [
        checks.Warning(
            "TWILIO_ACCOUNT_SID or TELEPHONY_PUBLIC_BASE_URL is empty: a waiting caller whose "
            "agent comes free is taken out of the queue only at their next wait request, up to "
            "one play of the hold music later, while the agent waits for them.",
            hint="Set both (docs/telephony.md), or TELEPHONY_QUEUE_MAX_WAIT_SECONDS=0.",
            id="calls.W002",
        )
    ]
