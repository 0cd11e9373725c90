"""Callers waiting in the queue, as the carrier sees them: hold music, leaving, and whispers.

Routing keeps the queue (routing.queue: who waits, who is next, which agent is theirs); this
module speaks to the carrier about it. A caller no agent can take gets `<Enqueue>` (see
service._wait_in_queue). While they wait the carrier fetches the queue's wait URL over and over:
the first time a short message and our hold music, then the music, until we answer `<Leave/>`
(an agent is theirs, or their longest wait is over). Leaving sends the call to the Enqueue's
action URL, which dials their agent, or the overflow number, or says the message.

An agent given to a caller is dialled at once: once committed, the caller's call is taken out of
the carrier's queue to the same action URL through the carrier's REST API (carrier_api). Without
API credentials, or should that request fail, the next wait request does it instead.
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.urls import reverse

from calls.models import InboundCall, WaitResult
from calls.telephony.carrier_api import carrier_api
from calls.telephony.service import (
    Route,
    agents_on_shift,
    carrier_text,
    inbound_call_current_route,
    inbound_call_lock,
    queue_connect,
    queue_hung_up,
    queue_wait_end,
    route_next,
)
from routing.models import WaitingCaller
from routing.queue import waiting_caller_leave, waiting_callers_offer
from routing.services import database_now
from vendors.states import STATES

logger = logging.getLogger(__name__)

# The carrier's QueueResult when the caller hung up while waiting.
QUEUE_HANGUP = "hangup"
# Left the carrier's queue through no doing of ours: the call goes on to overflow.
QUEUE_FAILED = {"error", "queue-full", "system-error"}
# A caller still not out of the queue this long after their longest wait has gone without a
# word from the carrier: their wait is closed by the sweep.
LOST_WAIT_GRACE_SECONDS = 120


def queue_wait_over(*, call_sid: object, now: datetime | None = None) -> bool:
    """The wait URL: whether the caller should leave the queue now (their agent is assigned,
    their longest wait is over, every agent for the state went offline, or we do not know
    them), else they hear more hold music."""
    now = now or database_now()
    sid = carrier_text(call_sid, 64)
    inbound = InboundCall.objects.filter(call_sid=sid).first()
    caller = WaitingCaller.objects.filter(call_sid=sid).first()
    if inbound is None or caller is None or not inbound.waiting:
        return True
    if caller.status != WaitingCaller.Status.WAITING or caller.wait_until <= now:
        return True
    # Every agent for the state went offline while they waited: nobody will come free.
    return not agents_on_shift(caller.state)


def queue_leave(*, call_sid: object, queue_result: object, now: datetime | None = None) -> Route:
    """The caller's call left the carrier's queue (the Enqueue's action, or our REST redirect):
    dial the agent the queue gave them; else, their wait over, overflow or the message."""
    now = now or database_now()
    result = carrier_text(queue_result, 32).lower()
    with transaction.atomic():
        inbound = inbound_call_lock(carrier_text(call_sid, 64))
        if inbound is None:
            logger.warning("Queue result %r for a call we never received: %r", result, call_sid)
            return Route(hang_up=True)
        if result == QUEUE_HANGUP:
            queue_hung_up(inbound=inbound, now=now)
            return Route(hang_up=True)
        if not inbound.waiting or inbound.ended_at is not None:
            return inbound_call_current_route(inbound=inbound)  # a repeat: answer as before
        caller = WaitingCaller.objects.select_for_update().filter(call_sid=inbound.call_sid).first()
        if caller is not None and caller.status == WaitingCaller.Status.ASSIGNED:
            return queue_connect(inbound, caller.agent_id, now)
        if result in QUEUE_FAILED:
            logger.warning("Call %s left the carrier's queue: %s", inbound.call_sid, result)
            queue_wait_end(inbound, now, WaitResult.OVERFLOW)
        # Their longest wait is over (or they left the queue for a reason we do not know): the
        # next route; it queues them again, in their place, while their wait lasts.
        return route_next(inbound, now)


def queue_caller_redirect(*, call_sid: str) -> bool:
    """Take a caller just given an agent out of the carrier's queue, through its REST API, to
    the Enqueue's action URL, which dials the agent. Whether it was asked.

    Runs once the assignment is committed. Not when the caller's own webhook already dialled the
    agent, and not without a public URL the carrier can reach: the next wait request then makes
    the caller leave the queue instead.
    """
    inbound = InboundCall.objects.filter(call_sid=call_sid).first()
    if inbound is None or not inbound.waiting or inbound.ended_at is not None:
        return False
    base = settings.TELEPHONY_PUBLIC_BASE_URL
    if not base:
        logger.info("No TELEPHONY_PUBLIC_BASE_URL: %s leaves the queue at its next wait", call_sid)
        return False
    try:
        return carrier_api().call_redirect(
            call_sid=call_sid, url=base + reverse("telephony-queue-leave")
        )
    except Exception:
        logger.exception("Could not take %s out of the queue; its next wait will", call_sid)
        return False


def on_caller_assigned(sender, *, call_sid: str, agent_id: int, **kwargs) -> None:
    """routing.queue.caller_assigned's receiver (connected in calls.apps)."""
    queue_caller_redirect(call_sid=call_sid)


def waiting_callers_sweep(*, now: datetime | None = None) -> int:
    """Beat's sweep: agents that time freed (a wrap-up or an unused hold ran out) go to the
    callers waiting for them; waits the carrier never ended are closed. Idempotent."""
    now = now or database_now()
    with transaction.atomic():
        assigned = len(waiting_callers_offer(now=now))
    lost_before = now - timedelta(seconds=LOST_WAIT_GRACE_SECONDS)
    lost = WaitingCaller.objects.filter(
        status=WaitingCaller.Status.WAITING, wait_until__lt=lost_before
    ).values_list("call_sid", flat=True)
    for call_sid in list(lost):
        _close_lost_wait(call_sid, now)
    return assigned


def _close_lost_wait(call_sid: str, now: datetime) -> None:
    """A caller whose wait ended long ago with no word from the carrier (no wait request, no
    status callback): they are gone. Recorded as hung up."""
    with transaction.atomic():
        inbound = inbound_call_lock(call_sid)
        if inbound is None or not inbound.waiting:
            waiting_caller_leave(call_sid=call_sid, now=now)
            return
        logger.warning("Call %s waited past its longest wait with no word; closed", call_sid)
        queue_hung_up(inbound=inbound, now=now)


def whisper_text(*, call_id: object) -> str:
    """What the agent hears before the caller is put through: the vendor and the state."""
    text = call_id.strip() if isinstance(call_id, str) else ""
    inbound = None
    if text.isascii() and text.isdigit() and len(text) < 19:
        inbound = (
            InboundCall.objects.select_related("call_record__vendor").filter(pk=int(text)).first()
        )
    if inbound is None:
        return "Transferred call."
    state = STATES.get(inbound.state, "an unknown state")
    record = inbound.call_record
    if record is None:
        return f"Transferred call, {state}."
    return f"Call from {record.vendor.name}, {state}."
