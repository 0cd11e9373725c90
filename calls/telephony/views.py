"""The carrier's webhooks: TwiML in answer to form-encoded POSTs.

Each view checks the signature, reads the carrier's fields, calls one service and renders its
route. No input may produce a 500: a carrier that got one would drop the caller, so anything
unexpected is logged and answered with TwiML that still reaches someone, or says sorry.
"""

import logging
from functools import wraps

from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.http import (
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseForbidden,
    UnreadablePostError,
)
from django.http.multipartparser import MultiPartParserError
from django.templatetags.static import static
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Dial, VoiceResponse

from calls.telephony.hold_music import SECONDS as HOLD_MUSIC_SECONDS
from calls.telephony.queue import queue_leave as leave_queue
from calls.telephony.queue import queue_wait_over, whisper_text
from calls.telephony.service import (
    Route,
    carrier_seconds,
    dial_attempt_finish,
    inbound_call_receive,
    inbound_call_status,
)

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Twilio-Signature"
# Leg events worth following; "completed" carries the leg's duration.
LEG_EVENTS = "initiated ringing answered completed"
# Our hold music (made by calls/telephony/hold_music.py), and how long it plays:
# the carrier asks the wait URL again after each play, so this is also how soon a caller whose
# agent could not be told to them through the REST API leaves the queue.
HOLD_MUSIC = "telephony/hold-music.wav"


def signed_url(request) -> str:
    """The URL the carrier requested, which is what it signed.

    Behind a proxy, either set TELEPHONY_PUBLIC_BASE_URL or have the proxy pass the original
    host and X-Forwarded-Proto (with SECURE_PROXY_SSL_HEADER), or every signature fails.
    """
    base = settings.TELEPHONY_PUBLIC_BASE_URL
    return base + request.get_full_path() if base else request.build_absolute_uri()


def carrier_webhook(view):
    """POST only, no CSRF (the carrier has no cookie), form and signature checked, never a 500."""

    @csrf_exempt
    @require_POST
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        refusal = _refusal(request)
        if refusal is not None:
            return refusal
        try:
            return view(request, *args, **kwargs)
        except Exception:
            logger.exception(
                "Telephony webhook %s failed; answering with the fallback", request.path
            )
            return twiml_response(fallback_twiml())

    return wrapper


def _refusal(request) -> HttpResponse | None:
    """Why a request is not the carrier's to act on, or None. Only those it is get the fallback.

    A form Django will not read (too many fields, too big) cannot be checked: it is refused, as
    is (with an auth token) a request that is unsigned or whose signature does not match.
    """
    token = settings.TWILIO_AUTH_TOKEN
    signature = request.headers.get(SIGNATURE_HEADER, "")
    if token and not signature:
        logger.warning("Refused %s: no signature", request.path)
        return HttpResponseForbidden("Invalid signature.", content_type="text/plain")
    try:
        form, _ = request.POST, request.GET  # a query Django will not read is refused too
    except (SuspiciousOperation, MultiPartParserError, UnreadablePostError) as error:
        logger.warning("Refused %s: unreadable form (%s)", request.path, error)
        return HttpResponseBadRequest("Unreadable form.", content_type="text/plain")
    if token:
        url = signed_url(request)
        try:
            valid = RequestValidator(token).validate(url, form, signature)
        except ValueError:  # a URL it cannot take apart, e.g. a port out of range
            valid = False
        if not valid:
            logger.warning("Refused %s: bad signature for %s", request.path, url)
            return HttpResponseForbidden("Invalid signature.", content_type="text/plain")
    return None


def twiml_response(response: VoiceResponse) -> HttpResponse:
    return HttpResponse(str(response), content_type="text/xml; charset=utf-8")


def fallback_twiml() -> VoiceResponse:
    response = VoiceResponse()
    if settings.TELEPHONY_OVERFLOW_NUMBER:
        response.append(_dial_verb(Route(destination=settings.TELEPHONY_OVERFLOW_NUMBER), False))
        return response
    response.say(settings.TELEPHONY_UNAVAILABLE_MESSAGE)
    response.hangup()
    return response


def route_twiml(route: Route) -> VoiceResponse:
    response = VoiceResponse()
    if route.hang_up:
        response.hangup()
    elif route.destination:
        response.append(_dial_verb(route, True))
    elif route.queue:
        # The queue is ours; the carrier's, one per state, only holds the call and plays the
        # wait URL's music. Leaving it (<Leave/>, or our REST redirect) requests the action.
        response.enqueue(
            f"waiting-{route.queue}",
            action=reverse("telephony-queue-leave"),
            method="POST",
            wait_url=reverse("telephony-queue-wait"),
            wait_url_method="POST",
        )
    else:
        response.say(settings.TELEPHONY_UNAVAILABLE_MESSAGE)
        response.hangup()
    return response


def _dial_verb(route: Route, followed: bool) -> Dial:
    """<Dial> the destination; followed legs report back to us, tagged with their attempt."""
    options: dict[str, object] = {
        "timeout": settings.TELEPHONY_DIAL_TIMEOUT_SECONDS,
        "answer_on_bridge": True,
    }
    leg: dict[str, object] = {}
    if followed:
        query = "?" + urlencode({"attempt": route.attempt})
        # Relative URLs: the carrier resolves them against the URL it just requested.
        options["action"] = reverse("telephony-dial-status") + query
        leg = {
            "status_callback": reverse("telephony-status") + query,
            "status_callback_event": LEG_EVENTS,
        }
        if route.whisper_call_id is not None:
            # Played to the agent when they answer, before the caller is put through.
            leg["url"] = (
                reverse("telephony-whisper") + "?" + urlencode({"call": route.whisper_call_id})
            )
    dial = Dial(**options)
    if route.destination.lower().startswith("sip:"):
        dial.sip(route.destination, **leg)
    else:
        dial.number(route.destination, **leg)
    return dial


@carrier_webhook
def voice(request):
    """POST /telephony/voice: the carrier's "a call comes in" webhook for every pool number."""
    route = inbound_call_receive(
        call_sid=request.POST.get("CallSid"),
        to_number=request.POST.get("To"),
        from_number=request.POST.get("From"),
    )
    return twiml_response(route_twiml(route))


@carrier_webhook
def dial_status(request):
    """POST /telephony/dial-status: the <Dial> ended; connect the next one or hang up."""
    route = dial_attempt_finish(
        call_sid=request.POST.get("CallSid"),
        attempt=request.GET.get("attempt"),
        dial_status=request.POST.get("DialCallStatus"),
        dial_duration=request.POST.get("DialCallDuration"),
    )
    return twiml_response(route_twiml(route))


@carrier_webhook
def status(request):
    """POST /telephony/status: status callbacks of the caller's call and of each dialled leg."""
    inbound_call_status(
        call_sid=request.POST.get("CallSid"),
        call_status=request.POST.get("CallStatus"),
        call_duration=request.POST.get("CallDuration"),
        parent_call_sid=request.POST.get("ParentCallSid", ""),
        attempt=request.GET.get("attempt"),
    )
    return twiml_response(VoiceResponse())


@carrier_webhook
def queue_wait(request):
    """POST /telephony/queue/wait: the Enqueue's wait URL, asked again after each play."""
    response = VoiceResponse()
    try:
        leave = queue_wait_over(call_sid=request.POST.get("CallSid"))
    except Exception:
        # The caller keeps waiting (the carrier asks again after the music), never dropped.
        logger.exception("Queue wait for %r failed; more hold music", request.POST.get("CallSid"))
        leave = False
    if leave:
        response.leave()
        return twiml_response(response)
    queue_time = carrier_seconds(request.POST.get("QueueTime"))
    if queue_time is None or queue_time < HOLD_MUSIC_SECONDS:
        response.say(settings.TELEPHONY_QUEUE_MESSAGE)  # once, as the wait begins
    response.play(_public_url(request, static(HOLD_MUSIC)))
    return twiml_response(response)


def _public_url(request, path: str) -> str:
    """An absolute URL of ours as the carrier reaches it (a <Play> needs one)."""
    base = settings.TELEPHONY_PUBLIC_BASE_URL
    if path.startswith(("http://", "https://")):
        return path
    return base + path if base else request.build_absolute_uri(path)


@carrier_webhook
def queue_leave(request):
    """POST /telephony/queue/leave: the caller left the queue (the Enqueue's action, or our
    REST redirect): dial their agent, or overflow, or the message."""
    route = leave_queue(
        call_sid=request.POST.get("CallSid"),
        queue_result=request.POST.get("QueueResult"),
    )
    return twiml_response(route_twiml(route))


@carrier_webhook
def whisper(request):
    """POST /telephony/whisper?call=<id>: what an agent hears before the caller is bridged."""
    response = VoiceResponse()
    response.say(whisper_text(call_id=request.GET.get("call")))
    return twiml_response(response)
