"""Helpers for the telephony tests: a signed carrier, and the exact TwiML it should get."""

from urllib.parse import urlencode

from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from twilio.request_validator import RequestValidator

from calls.models import CallRecord
from routing.models import Agent

AUTH_TOKEN = "test-carrier-auth-token"
OVERFLOW = "+18005550199"


class Carrier:
    """Sends webhooks the way the carrier does: form-encoded, signed with the auth token."""

    def __init__(self, client, token: str = AUTH_TOKEN, base: str = "http://testserver"):
        self.client = client
        self.token = token
        self.base = base

    def post(self, path: str, params: dict, *, signature: str | None = None):
        if signature is None:
            signature = RequestValidator(self.token).compute_signature(self.base + path, params)
        return self.client.post(
            path,
            data=urlencode(params),
            content_type="application/x-www-form-urlencoded",
            HTTP_X_TWILIO_SIGNATURE=signature,
        )

    def voice(self, *, sid: str, to: str, caller: str = "+14801234567"):
        return self.post(
            "/telephony/voice",
            {
                "CallSid": sid,
                "To": to,
                "From": caller,
                "Direction": "inbound",
                "CallStatus": "ringing",
            },
        )

    def dial_status(self, *, sid: str, attempt: int, status: str, duration: int | None = None):
        params = {"CallSid": sid, "DialCallStatus": status, "DialCallSid": f"{sid}-leg{attempt}"}
        if duration is not None:
            params["DialCallDuration"] = str(duration)
        return self.post(f"/telephony/dial-status?attempt={attempt}", params)

    def leg_status(self, *, parent: str, attempt: int, status: str, duration: int | None = None):
        params = {
            "CallSid": f"{parent}-leg{attempt}",
            "ParentCallSid": parent,
            "CallStatus": status,
        }
        if duration is not None:
            params["CallDuration"] = str(duration)
        return self.post(f"/telephony/status?attempt={attempt}", params)

    def queue_wait(self, *, sid: str, queue_time: int = 0):
        """The Enqueue's wait URL, as the carrier asks it after each play of the hold music."""
        return self.post(
            "/telephony/queue/wait",
            {"CallSid": sid, "QueueSid": "QU-test", "QueueTime": str(queue_time)},
        )

    def queue_leave(self, *, sid: str, result: str | None = "leave", queue_time: int = 0):
        """The Enqueue's action (with QueueResult), or our REST redirect's URL (without)."""
        params = {"CallSid": sid, "QueueSid": "QU-test", "QueueTime": str(queue_time)}
        if result is not None:
            params["QueueResult"] = result
        return self.post("/telephony/queue/leave", params)

    def whisper(self, url: str, *, parent: str, attempt: int):
        """The whisper URL of a dialled leg, asked when the agent answers."""
        return self.post(url, {"CallSid": f"{parent}-leg{attempt}", "ParentCallSid": parent})

    def call_status(self, *, sid: str, status: str, duration: int | None = None):
        params = {"CallSid": sid, "CallStatus": status}
        if duration is not None:
            params["CallDuration"] = str(duration)
        return self.post("/telephony/status", params)


def dial_twiml(destination: str, attempt: int, *, whisper_call: int | None = None) -> str:
    """The exact TwiML that dials one followed leg (with the agent's whisper, if any)."""
    verb = "Sip" if destination.startswith("sip:") else "Number"
    whisper = "" if whisper_call is None else f' url="/telephony/whisper?call={whisper_call}"'
    return (
        '<?xml version="1.0" encoding="UTF-8"?><Response>'
        f'<Dial action="/telephony/dial-status?attempt={attempt}" '
        'answerOnBridge="true" timeout="20">'
        f'<{verb} statusCallback="/telephony/status?attempt={attempt}" '
        f'statusCallbackEvent="initiated ringing answered completed"{whisper}>'
        f"{destination}</{verb}>"
        "</Dial></Response>"
    )


def enqueue_twiml(state: str) -> str:
    """The exact TwiML that puts the caller in the queue for `state`."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?><Response>'
        '<Enqueue action="/telephony/queue/leave" method="POST" '
        f'waitUrl="/telephony/queue/wait" waitUrlMethod="POST">waiting-{state}</Enqueue>'
        "</Response>"
    )


LEAVE_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response><Leave /></Response>'


class RecordingCarrierApi:
    """The carrier's REST API in the tests (settings.TELEPHONY_CARRIER_API): it records each
    redirect asked of it, as Django's locmem backend keeps the mail it was given."""

    redirects: list[tuple[str, str]] = []

    def call_redirect(self, *, call_sid: str, url: str) -> bool:
        self.redirects.append((call_sid, url))
        return True


HANGUP_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response><Hangup /></Response>'


def message_twiml(message: str) -> str:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><Response><Say>{message}</Say><Hangup /></Response>'
    )


def agent_with_token(name: str) -> tuple[Agent, str]:
    """An agent with a login of its own and that login's API token."""
    agent = Agent.objects.get(name=name)
    agent.user = get_user_model().objects.create_user(username="-".join(name.lower().split()))
    agent.save(update_fields=["user"])
    return agent, Token.objects.create(user=agent.user).key


def record_of(answer: dict) -> CallRecord:
    """The call record of a ping, from the `data` of its answer."""
    return CallRecord.objects.get(request_id=answer["requestId"])


class UnreachableCarrierApi:
    """A carrier API that cannot be reached (settings.TELEPHONY_CARRIER_API)."""

    def call_redirect(self, *, call_sid: str, url: str) -> bool:
        raise ConnectionError("carrier API unreachable")
