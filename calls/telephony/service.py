"""Calls arriving on our numbers: match, route, and follow them to their end.

The carrier (Twilio, or any carrier speaking its TwiML dialect) asks what to do with each call and
reports how each leg went. These services decide and record; the views only parse the carrier's
form fields and render the decision as TwiML. Nothing a carrier sends may lose a caller: whatever
is malformed or unknown still gets a route (an agent, the overflow number, or a polite message).
"""

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from calls.lifecycle import call_record_complete, call_record_talk_corrected
from calls.models import CALL_ENDS, CallRecord, CallStatus, DialAttempt, InboundCall, WaitResult
from calls.settlement.billing import call_record_reopen
from routing.geography import InvalidPhoneNumber, normalize_us_phone, state_for_phone
from routing.models import Agent, Reservation, TransferNumber, WaitingCaller
from routing.queue import (
    waiting_caller_join,
    waiting_caller_leave,
    waiting_callers_offer,
)
from routing.services import (
    agent_call_end,
    agent_call_talked_after_all,
    agent_claim_for_call,
    agent_mark_unreachable,
    database_now,
    reservation_connect,
)

logger = logging.getLogger(__name__)

MESSAGE_ROUTED = "message"
# routed_to while the caller waits in the queue for an agent.
QUEUE_ROUTED = "queue"
# The carrier's leg statuses (Twilio's DialCallStatus and CallStatus values).
TALKED = {CallStatus.COMPLETED, CallStatus.ANSWERED}
UNREACHED = {CallStatus.BUSY, CallStatus.NO_ANSWER, CallStatus.FAILED}
CANCELED = CallStatus.CANCELED
CALL_OVER = set(CALL_ENDS)
LEG_UP = {CallStatus.IN_PROGRESS, CallStatus.ANSWERED}
# A dial attempt's status from its creation until a leg callback moves it on (the leg's own
# "initiated" callback leaves it so: a leg only initiated has not rung either).
DIALLED = CallStatus.INITIATED
# A leg the carrier dialled has rung, and rung out, within the dial timeout; with this margin
# for late callbacks, an attempt still DIALLED was never dialled (see agent_calls_end_stale).
RING_GRACE_SECONDS = 120
# Ours, not the carrier's: the status of a call the stale-call sweep ended because no callback
# told us how it ended. The carrier's own final status, should it still arrive, replaces it.
UNHEARD = CallStatus.UNHEARD
# Where a call or leg stands before it ends; callbacks can arrive out of order, and a status
# never moves back (a late "ringing" after "in-progress" is old news). Final ones come last.
PROGRESS: dict[str, int] = {
    CallStatus.QUEUED: 0,
    CallStatus.INITIATED: 1,
    CallStatus.RINGING: 2,
    CallStatus.IN_PROGRESS: 3,
    CallStatus.ANSWERED: 3,
}


def _moves_forward(current: str, new: str) -> bool:
    return PROGRESS.get(new, -1) > PROGRESS.get(current, -1)


@dataclass(frozen=True)
class Route:
    """What the carrier should do with the caller next."""

    destination: str = ""  # an E.164 number or sip: address to dial; empty for none
    attempt: int = 0
    hang_up: bool = False  # the call is over: nothing more to say
    queue: str = ""  # the state whose queue the caller waits in; empty for none
    # The inbound call whose vendor and state the agent hears before the caller is put
    # through (the agent's whisper is on), or None.
    whisper_call_id: int | None = None

    @property
    def is_message(self) -> bool:
        return not self.destination and not self.hang_up and not self.queue


# --- Reading carrier input --------------------------------------------------------------------


def carrier_text(value: object, limit: int) -> str:
    """A carrier field as stored: text, stripped, cut to the column's size."""
    return value.strip()[:limit] if isinstance(value, str) else ""


def carrier_seconds(value: object) -> int | None:
    """A duration the carrier reports, or None when it is missing or nonsense.

    ASCII digits only: str.isdigit() also accepts digits int() refuses, such as superscripts.
    """
    if not isinstance(value, str):
        return None
    value = value.strip()
    if not value.isascii() or not value.isdigit():
        return None
    seconds = int(value)
    return seconds if seconds < 10**8 else None


def carrier_attempt(value: object) -> int | None:
    seconds = carrier_seconds(value)
    return seconds if seconds and seconds < 1000 else None


def _us_number(value: str) -> str | None:
    try:
        return normalize_us_phone(value)
    except InvalidPhoneNumber:
        return None


def _dialled_number(value: str) -> str | None:
    """The number called, as the pool stores it (E.164). Toll-free numbers count here."""
    digits = value.translate(str.maketrans("", "", " -.()"))
    if digits.startswith("+"):
        digits = digits[1:]
    if not digits.isascii() or not digits.isdigit():
        return None
    if len(digits) == 10:
        digits = "1" + digits
    return "+" + digits if 8 <= len(digits) <= 15 else None


def _state_of_caller(caller: str | None) -> str:
    try:
        return state_for_phone(caller) if caller else ""
    except InvalidPhoneNumber:
        return ""


# --- The call arrives ---------------------------------------------------------------------------


def inbound_call_receive(
    *, call_sid: object, to_number: object, from_number: object, now: datetime | None = None
) -> Route:
    """A call reached one of our numbers: match it to the live reservation, or route it anyway."""
    now = now or database_now()
    # A call the carrier did not name is still answered and recorded, under a name of our own.
    sid = carrier_text(call_sid, 64) or f"missing-{uuid.uuid4()}"
    existing = InboundCall.objects.filter(call_sid=sid).first()
    if existing is not None:
        return inbound_call_current_route(inbound=existing)  # the carrier retried the webhook
    try:
        with transaction.atomic():
            return _receive(sid, carrier_text(to_number, 32), carrier_text(from_number, 32), now)
    except IntegrityError:
        # The same CallSid twice at once: the first one's transaction won; answer as it did.
        existing = InboundCall.objects.filter(call_sid=sid).first()
        if existing is None:
            raise
        return inbound_call_current_route(inbound=existing)


def _receive(sid: str, to_raw: str, from_raw: str, now: datetime) -> Route:
    dialled = _dialled_number(to_raw)
    number = TransferNumber.objects.filter(number=dialled).first() if dialled else None
    caller = _us_number(from_raw)
    inbound = InboundCall(
        call_sid=sid,
        to_number=to_raw,
        from_number=from_raw,
        received_at=now,
        status=CallStatus.RINGING,
    )
    if number is None:
        inbound.match = InboundCall.Match.UNKNOWN_NUMBER
        inbound.state = _state_of_caller(caller)
        inbound.save()
        return route_next(inbound, now)

    reservation = reservation_connect(transfer_number=number, now=now)
    if reservation is not None:
        record = _first_record(reservation)
        if record is not None:
            record.outcome = CallRecord.Outcome.CONNECTED
            record.connected_at = now
            _witness_caller_id(record, from_raw, caller)
            record.call_status = CallStatus.RINGING
            record.save(
                update_fields=[
                    "outcome", "connected_at", "caller_id", "caller_id_matches", "call_status"
                ]
            )  # fmt: skip
        inbound.match = InboundCall.Match.MATCHED
        inbound.call_record = record
        inbound.state = reservation.state
        inbound.save()
        return _dial(inbound, reservation.agent, now, attempt=1)

    latest = number.reservations.order_by("-created_at").first()
    if latest is not None and _ended_unused(latest, now):
        # The vendor transferred after the TTL, or after the hold was released (its agent went
        # offline, or staff let it go): the hold is gone, but we know whose call it is.
        inbound.match = InboundCall.Match.LATE
        inbound.call_record = _first_record(latest)
        inbound.state = latest.state
        if inbound.call_record is not None:
            _credit_late(inbound.call_record, from_raw, caller, now)
    else:
        inbound.match = InboundCall.Match.NO_RESERVATION
        inbound.state = _state_of_caller(caller)
    inbound.save()
    return route_next(inbound, now)


def _credit_late(record: CallRecord, from_raw: str, caller: str | None, now: datetime) -> None:
    """A late call still credits the ping's record: it follows this call to its end, as a
    matched one does. Only the first call to arrive for it: a record another call already
    connected keeps that call."""
    if record.outcome not in LATE_CREDITABLE:
        return
    record.outcome = CallRecord.Outcome.CONNECTED
    record.connected_at = now
    _witness_caller_id(record, from_raw, caller)
    record.call_status = CallStatus.RINGING
    reopened = call_record_reopen(record)  # settled as "no call" when its hold ended
    record.save(
        update_fields=[
            "outcome", "connected_at", "caller_id", "caller_id_matches", "call_status", *reopened
        ]
    )  # fmt: skip


# A record whose hold ended without a call (or has, but no job marked it yet).
LATE_CREDITABLE = (
    CallRecord.Outcome.RESERVED,
    CallRecord.Outcome.EXPIRED,
    CallRecord.Outcome.RELEASED,
)


def _followed_record(inbound: InboundCall) -> CallRecord | None:
    """The call record this call moves along: the one it connected when it arrived, on time or
    late (a late call finding its record connected by an earlier call leaves it alone)."""
    record = inbound.call_record
    if record is None or inbound.match not in (InboundCall.Match.MATCHED, InboundCall.Match.LATE):
        return None
    if inbound.match == InboundCall.Match.LATE and record.connected_at != inbound.received_at:
        return None
    return record


def _ended_unused(reservation: Reservation, now: datetime) -> bool:
    """The reservation ended without its call: past its TTL, or released before it."""
    if reservation.status == Reservation.Status.RELEASED:
        return True
    return reservation.expires_at <= now and reservation.status in (
        Reservation.Status.ACTIVE,
        Reservation.Status.EXPIRED,
    )


def _first_record(reservation: Reservation) -> CallRecord | None:
    return reservation.call_records.filter(repeat_of__isnull=True).order_by("received_at").first()


def _witness_caller_id(record: CallRecord, from_raw: str, caller: str | None) -> None:
    """The caller id is a second witness to the ping's phone number; keep both when they differ.

    A withheld or non-US caller id proves nothing either way: the match stays unknown (None).
    """
    record.caller_id = caller or from_raw
    record.caller_id_matches = None if caller is None else caller == record.phone_number


# --- Choosing who rings next ----------------------------------------------------------------


def route_next(inbound: InboundCall, now: datetime) -> Route:
    """The next free agent for the call's state, up to the tries allowed; else a wait in the
    queue for one, up to the longest wait; then overflow, then the message."""
    attempts = list(inbound.attempts.all())
    tried_agents = [attempt.agent_id for attempt in attempts if attempt.agent_id is not None]
    tried_overflow = any(attempt.agent_id is None for attempt in attempts)
    if inbound.state and len(tried_agents) < settings.TELEPHONY_MAX_AGENT_TRIES:
        agent = agent_claim_for_call(state=inbound.state, now=now, exclude_ids=tried_agents)
        if agent is not None:
            return _dial(inbound, agent, now, attempt=len(attempts) + 1)
        queued = _wait_in_queue(inbound, now)
        if queued is not None:
            return queued
    overflow = settings.TELEPHONY_OVERFLOW_NUMBER
    if overflow and not tried_overflow:
        return _dial(inbound, None, now, attempt=len(attempts) + 1, destination=overflow)
    queue_wait_end(inbound, now, WaitResult.OVERFLOW)
    inbound.routed_to = MESSAGE_ROUTED
    inbound.save(update_fields=["routed_to"])
    return Route()


def _wait_in_queue(inbound: InboundCall, now: datetime) -> Route | None:
    """Put the caller in the queue for their state (or back in their place), or None when the
    queue is off, their longest wait is over, or no agent for the state is on shift.

    An agent may be idle but held back for callers who waited longer (time freed them a moment
    ago): they are offered first, and should this caller be the longest waiting, they are
    connected now instead of waiting at all.
    """
    max_wait = settings.TELEPHONY_QUEUE_MAX_WAIT_SECONDS
    if max_wait <= 0:
        return None
    if not agents_on_shift(inbound.state):
        return None  # every agent for the state is offline: no one will come free
    caller = waiting_caller_join(
        call_sid=inbound.call_sid, state=inbound.state, now=now, max_wait_seconds=max_wait
    )
    if caller is None:
        return None
    inbound.queued_at = caller.queued_at
    inbound.dequeued_at = None
    inbound.wait_result = ""
    inbound.routed_to = QUEUE_ROUTED
    inbound.save(update_fields=["queued_at", "dequeued_at", "wait_result", "routed_to"])
    _record_wait(inbound)
    for assignment in waiting_callers_offer(now=now, states=[inbound.state]):
        if assignment.call_sid == inbound.call_sid:
            return queue_connect(inbound, assignment.agent_id, now)
    return Route(queue=inbound.state)


def agents_on_shift(state: str) -> bool:
    """Whether any agent licensed for `state` is available (free or not): one may come free."""
    return Agent.objects.licensed_for(state).filter(status=Agent.Status.AVAILABLE).exists()


def queue_connect(inbound: InboundCall, agent_id: int, now: datetime) -> Route:
    """Dial the agent the queue gave the caller (already on the call for them)."""
    agent = Agent.objects.get(pk=agent_id)
    return _dial(inbound, agent, now, attempt=inbound.attempts.count() + 1)


def queue_wait_end(inbound: InboundCall, now: datetime, result: str) -> None:
    """The caller leaves the queue, if they were in it: recorded on the call and its record."""
    if inbound.queued_at is None or inbound.dequeued_at is not None:
        return
    waiting_caller_leave(call_sid=inbound.call_sid, now=now)
    inbound.dequeued_at = now
    inbound.wait_result = result
    inbound.save(update_fields=["dequeued_at", "wait_result"])
    _record_wait(inbound)


def _record_wait(inbound: InboundCall) -> None:
    """The call record follows its call's wait (matched and late calls have one)."""
    record = inbound.call_record
    if record is None:
        return
    record.queued_at = inbound.queued_at
    record.dequeued_at = inbound.dequeued_at
    record.wait_result = inbound.wait_result
    record.save(update_fields=["queued_at", "dequeued_at", "wait_result"])


def _dial(
    inbound: InboundCall,
    agent: Agent | None,
    now: datetime,
    *,
    attempt: int,
    destination: str = "",
) -> Route:
    if not destination:
        if agent is None:
            raise ValueError("A dial needs an agent or a destination.")
        destination = agent.destination
    DialAttempt.objects.create(
        inbound_call=inbound,
        agent=agent,
        destination=destination,
        attempt=attempt,
        started_at=now,
        status=DIALLED,
    )
    queue_wait_end(inbound, now, WaitResult.CONNECTED if agent else WaitResult.OVERFLOW)
    inbound.routed_to = destination
    inbound.save(update_fields=["routed_to"])
    return Route(
        destination=destination,
        attempt=attempt,
        whisper_call_id=inbound.pk if agent is not None and agent.whisper else None,
    )


def inbound_call_current_route(*, inbound: InboundCall) -> Route:
    """What we last told the carrier, for a webhook it sends again."""
    if inbound.ended_at is None and inbound.waiting:
        return Route(queue=inbound.state)
    latest = inbound.attempts.select_related("agent").order_by("-attempt").first()
    if latest is None:
        return Route(hang_up=inbound.ended_at is not None)
    if latest.status in TALKED or latest.status == CANCELED or inbound.ended_at is not None:
        return Route(hang_up=True)
    if latest.status in UNREACHED:
        return Route()
    whisper = latest.agent is not None and latest.agent.whisper
    return Route(
        destination=latest.destination,
        attempt=latest.attempt,
        whisper_call_id=inbound.pk if whisper else None,
    )


# --- Following the call ---------------------------------------------------------------------


def inbound_call_lock(call_sid: str) -> InboundCall | None:
    """The inbound call with this carrier sid, locked for the rest of the transaction (every
    webhook of one call takes its turn on it), or None if we never received it."""
    return InboundCall.objects.select_for_update().filter(call_sid=call_sid).first()


def dial_attempt_finish(
    *,
    call_sid: object,
    attempt: object,
    dial_status: object,
    dial_duration: object,
    now: datetime | None = None,
) -> Route:
    """The carrier's Dial ended (its `action`): talked, rang out, or the caller hung up."""
    now = now or database_now()
    status = carrier_text(dial_status, 32).lower()
    if status not in CALL_OVER and status not in TALKED:
        # Missing or unknown: treat as not reached, so the caller moves on.
        status = CallStatus.FAILED
    duration = carrier_seconds(dial_duration)
    with transaction.atomic():
        inbound = inbound_call_lock(carrier_text(call_sid, 64))
        if inbound is None:
            logger.warning("Dial status for a call we never received: %r", call_sid)
            return Route(hang_up=True)
        dial = _attempt_of(inbound, attempt)
        if dial is None or dial.status in CALL_OVER:
            if dial is not None and status in TALKED:
                if dial.status == CallStatus.COMPLETED:
                    _talk_time_known(inbound, dial, duration)
                elif dial.status == CANCELED:
                    _talked_after_all(inbound, dial, duration, now)
            return inbound_call_current_route(inbound=inbound)  # a repeat: answer as before
        dial.status = CallStatus.COMPLETED if status in TALKED else status
        dial.duration_seconds = duration if duration is not None else dial.duration_seconds
        dial.save(update_fields=["status", "duration_seconds"])
        record = _followed_record(inbound)
        if status in TALKED:
            if dial.agent_id:
                agent_call_end(agent_id=dial.agent_id, now=now, talked=True)
            inbound.answered_at = inbound.answered_at or (now - timedelta(seconds=duration or 0))
            inbound.save(update_fields=["answered_at"])
            if record is not None:
                _complete_record(record, now, duration, CallStatus.COMPLETED)
            return Route(hang_up=True)
        if status == CANCELED:
            if dial.agent_id:
                agent_call_end(agent_id=dial.agent_id, now=now, talked=False)
            if record is not None:
                _complete_record(record, now, 0, CANCELED)
            return Route(hang_up=True)
        # Busy, no answer, failed, or a status we do not know: the agent is not there.
        if dial.agent_id:
            agent_mark_unreachable(agent_id=dial.agent_id, now=now)
        if record is not None:
            record.call_status = status
            record.save(update_fields=["call_status"])
        return route_next(inbound, now)


def _attempt_of(inbound: InboundCall, attempt: object) -> DialAttempt | None:
    number = carrier_attempt(attempt)
    attempts = inbound.attempts.select_for_update()
    if number is not None:
        return attempts.filter(attempt=number).first()
    return attempts.order_by("-attempt").first()


def _talk_time_known(inbound: InboundCall, dial: DialAttempt, duration: int | None) -> None:
    """A Dial action after the caller's call ended: its duration replaces our estimate."""
    if duration is None or duration == dial.duration_seconds:
        return
    dial.duration_seconds = duration
    dial.save(update_fields=["duration_seconds"])
    record = _matched_record(inbound, CallRecord.Outcome.COMPLETED)
    if record is not None:
        record.duration_seconds = duration
        call_record_talk_corrected(record=record, now=database_now(), fields=["duration_seconds"])


def _matched_record(inbound: InboundCall, outcome: str) -> CallRecord | None:
    """The call record of this matched call, if it has this outcome (or None)."""
    record = _followed_record(inbound)
    if record is not None and record.outcome == outcome:
        return record
    return None


def _talked_after_all(
    inbound: InboundCall, dial: DialAttempt, duration: int | None, now: datetime
) -> None:
    """A Dial action says the agent talked, after their leg was ended as canceled.

    The leg's answered callback was late or lost, so when the caller's call ended (or the sweep
    ended it) the leg still looked unanswered: settled as canceled, the record 0 s, the agent
    freed without a wrap-up. The carrier's Dial action is the word on the leg: correct all three.
    """
    ended_at = inbound.ended_at or now
    dial.status = CallStatus.COMPLETED
    dial.duration_seconds = duration if duration is not None else dial.duration_seconds
    dial.save(update_fields=["status", "duration_seconds"])
    if inbound.answered_at is None:
        inbound.answered_at = ended_at - timedelta(seconds=duration or 0)
        inbound.save(update_fields=["answered_at"])
    record = _matched_record(inbound, CallRecord.Outcome.COMPLETED)
    if record is not None:
        record.duration_seconds = dial.duration_seconds  # None: they talked, for how long unknown
        record.call_status = CallStatus.COMPLETED
        call_record_talk_corrected(
            record=record, now=now, fields=["duration_seconds", "call_status"]
        )
    if dial.agent_id:
        agent_call_talked_after_all(agent_id=dial.agent_id, ended_at=ended_at)


def _complete_record(record: CallRecord, now: datetime, duration: int | None, status: str) -> None:
    call_record_complete(record=record, now=now, duration=duration, status=status)


def inbound_call_status(
    *,
    call_sid: object,
    call_status: object,
    call_duration: object,
    parent_call_sid: object = "",
    attempt: object = "",
    now: datetime | None = None,
) -> None:
    """A status callback: of one dialled leg (it has a parent call) or of the caller's call."""
    now = now or database_now()
    status = carrier_text(call_status, 32).lower()
    duration = carrier_seconds(call_duration)
    parent = carrier_text(parent_call_sid, 64)
    with transaction.atomic():
        inbound = inbound_call_lock(parent or carrier_text(call_sid, 64))
        if inbound is None or not status:
            logger.warning("Status %r for a call we never received: %r", status, call_sid)
            return
        if parent:
            _leg_status(inbound, attempt, status, duration, now)
        else:
            _call_status(inbound, status, duration, now)


def _leg_status(
    inbound: InboundCall, attempt: object, status: str, duration: int | None, now: datetime
) -> None:
    dial = _attempt_of(inbound, attempt)
    if dial is None or dial.status in CALL_OVER:
        return  # the Dial's action already settled this leg
    if status in LEG_UP:
        dial.status = CallStatus.ANSWERED
        inbound.answered_at = inbound.answered_at or now
        inbound.status = CallStatus.IN_PROGRESS
        inbound.save(update_fields=["answered_at", "status"])
        record = _followed_record(inbound)
        if record is not None:
            record.call_status = CallStatus.ANSWERED
            record.save(update_fields=["call_status"])
    elif status not in CALL_OVER and _moves_forward(dial.status, status):
        dial.status = status  # initiated, ringing
    if duration is not None:
        dial.duration_seconds = duration
    dial.save(update_fields=["status", "duration_seconds"])


def _call_status(inbound: InboundCall, status: str, duration: int | None, now: datetime) -> None:
    if inbound.ended_at is not None:
        if inbound.status == UNHEARD and status in CALL_OVER:
            # The carrier's end of a call the sweep ended for want of it: recorded as it says.
            # The sweep already settled the attempts, the record and the agent; not again.
            inbound.status = status
            inbound.duration_seconds = duration
            inbound.save(update_fields=["status", "duration_seconds"])
        return  # the call is over: a late or repeated callback changes nothing else
    if status not in CALL_OVER and not _moves_forward(inbound.status, status):
        return
    inbound.status = status
    fields = ["status"]
    if status in CALL_OVER:
        inbound.ended_at = now
        inbound.duration_seconds = duration
        fields += ["ended_at", "duration_seconds"]
        queue_hung_up(inbound=inbound, now=now)
        latest = _settle_open_attempt(inbound, now)
        record = _matched_record(inbound, CallRecord.Outcome.CONNECTED)
        if record is not None:
            # No Dial action ended the call on the record before the caller's call ended.
            if latest is not None and latest.status == CallStatus.COMPLETED:
                _complete_record(record, now, _talk_seconds(inbound, latest, now, duration), status)
            else:
                # Nobody answered: the same as a Dial that rang out or was canceled, 0 s.
                not_talked = latest.status if latest is not None else status
                _complete_record(record, now, 0, not_talked)
    inbound.save(update_fields=fields)


def queue_hung_up(*, inbound: InboundCall, now: datetime) -> None:
    """The caller hung up while waiting: out of the queue, and an agent the queue had just
    given them (their call not yet taken out of the carrier's queue) is free again.
    Call inside the transaction that locked the inbound call."""
    if not inbound.waiting:
        return
    caller = WaitingCaller.objects.select_for_update().filter(call_sid=inbound.call_sid).first()
    assigned = caller is not None and caller.status == WaitingCaller.Status.ASSIGNED
    queue_wait_end(inbound, now, WaitResult.HUNG_UP)
    if assigned and caller is not None and caller.agent_id is not None:
        agent_call_end(
            agent_id=caller.agent_id, now=now, talked=False, on_call_since=caller.assigned_at
        )


def _settle_open_attempt(inbound: InboundCall, now: datetime) -> DialAttempt | None:
    """The caller's call ended while a leg was still open: free its agent. The latest attempt."""
    dial = inbound.attempts.select_for_update().order_by("-attempt").first()
    if dial is None or dial.status in CALL_OVER:
        return dial
    talked = _close_open_attempt(dial)
    if dial.agent_id:
        agent_call_end(agent_id=dial.agent_id, now=now, talked=talked)
    return dial


def _close_open_attempt(dial: DialAttempt) -> bool:
    """End an attempt still open when its call ended: completed if its leg was answered, else
    canceled. Whether it was answered."""
    answered = dial.status == CallStatus.ANSWERED
    dial.status = CallStatus.COMPLETED if answered else CANCELED
    dial.save(update_fields=["status"])
    return answered


def _talk_seconds(
    inbound: InboundCall, dial: DialAttempt, now: datetime, call_duration: int | None
) -> int | None:
    """How long the caller spent with the answered leg, before its Dial action tells us.

    The leg's own duration when it reported one; else the time since it answered, never more
    than the whole call. The Dial action's duration replaces this when it arrives.
    """
    if dial.duration_seconds is not None:
        return dial.duration_seconds
    if inbound.answered_at is None:
        return call_duration
    since_answer = max(0, int((now - inbound.answered_at).total_seconds()))
    return since_answer if call_duration is None else min(since_answer, call_duration)


# --- The safety net: calls whose end we never heard ------------------------------------------


def agent_calls_end_stale(*, now: datetime | None = None) -> int:
    """Free every agent left on a call that can no longer be live; returns how many were.

    An agent is on a call from the moment their phone rings until a callback ends it. When none
    ever will (the caller's status callback came before the call's own webhook had committed, so
    it found no call; or the carrier never sent it), nothing else would free them. Their call is
    over when none of their dial attempts is open on a call still going, or when it started more
    than TELEPHONY_MAX_CALL_SECONDS ago: its attempt and the call are then ended now, as the lost
    callback would have ended them. An attempt that has had no leg callback at all (still
    DIALLED) more than TELEPHONY_DIAL_TIMEOUT_SECONDS + RING_GRACE_SECONDS after it started does
    not keep the call going: a leg the carrier dialled would have rung by then, and in the race
    above the carrier never dials the agent for a caller already gone. Idempotent: an agent
    already freed, or on a newer call, is left alone.
    """
    now = now or database_now()
    cutoff = now - timedelta(seconds=settings.TELEPHONY_MAX_CALL_SECONDS)
    unrung_cutoff = now - timedelta(
        seconds=settings.TELEPHONY_DIAL_TIMEOUT_SECONDS + RING_GRACE_SECONDS
    )
    live_attempts = _going(
        DialAttempt.objects.filter(agent=OuterRef("pk"), inbound_call__ended_at__isnull=True),
        unrung_cutoff,
    )
    # Given to a waiting caller whose call is on its way out of the queue to them: no attempt
    # yet, until the call's webhook dials them (or the caller hangs up).
    just_assigned = WaitingCaller.objects.filter(
        agent=OuterRef("pk"),
        status=WaitingCaller.Status.ASSIGNED,
        assigned_at__gt=unrung_cutoff,
    )
    stuck = (
        Agent.objects.filter(on_call_since__isnull=False)
        .filter((~Exists(live_attempts) & ~Exists(just_assigned)) | Q(on_call_since__lte=cutoff))
        .order_by("pk")
        .values_list("pk", "on_call_since")
    )
    return sum(
        _end_stale_call(agent_id, since, cutoff, unrung_cutoff, now)
        for agent_id, since in list(stuck)
    )


def _going(attempts, unrung_cutoff: datetime):
    """The attempts still open, less those never dialled (no leg callback by `unrung_cutoff`)."""
    return attempts.exclude(status__in=CALL_OVER).exclude(
        status=DIALLED, started_at__lt=unrung_cutoff
    )


def _end_stale_call(
    agent_id: int, since: datetime, cutoff: datetime, unrung_cutoff: datetime, now: datetime
) -> bool:
    with transaction.atomic():
        # Locked in the webhooks' order: the inbound calls first (their attempts follow them),
        # then the agent.
        unsettled = DialAttempt.objects.filter(agent_id=agent_id).exclude(status__in=CALL_OVER)
        calls = list(
            InboundCall.objects.select_for_update()
            .filter(pk__in=unsettled.values("inbound_call_id"))
            .order_by("pk")
        )
        agent = (
            Agent.objects.select_for_update(no_key=True)
            .filter(pk=agent_id, on_call_since=since)
            .first()
        )
        if agent is None:
            return False  # a callback freed them meanwhile, or they are on a newer call
        open_calls = [inbound.pk for inbound in calls if inbound.ended_at is None]
        if (
            since > cutoff
            and open_calls
            and _going(
                DialAttempt.objects.filter(agent_id=agent_id, inbound_call_id__in=open_calls),
                unrung_cutoff,
            ).exists()
        ):
            return False  # a callback arrived meanwhile: the call is going on
        # Given to a waiting caller whose call never came out of the queue to them: that
        # caller leaves the queue (a caller still on the line joins it again, in their place, at
        # the next hold-music request), and the agent is free.
        lost = list(
            WaitingCaller.objects.select_for_update(skip_locked=True).filter(
                agent_id=agent_id, status=WaitingCaller.Status.ASSIGNED
            )
        )
        if since > cutoff and any(c.assigned_at and c.assigned_at > unrung_cutoff for c in lost):
            return False  # given to a caller meanwhile
        for caller in lost:
            waiting_caller_leave(call_sid=caller.call_sid, now=now)
        talked = False
        for inbound in calls:
            talked = _end_unheard_call(inbound, agent_id, now) or talked
        if not calls and not lost:
            latest = DialAttempt.objects.filter(agent_id=agent_id).order_by("-started_at").first()
            talked = latest is not None and latest.status in TALKED
        agent_call_end(agent_id=agent_id, now=now, talked=talked, on_call_since=since)
    logger.warning(
        "Agent %s was still on a call since %s that no callback ended; ended it now (calls %s)",
        agent_id,
        since.isoformat(),
        ", ".join(inbound.call_sid for inbound in calls) or "none open",
    )
    return True


def _end_unheard_call(inbound: InboundCall, agent_id: int, now: datetime) -> bool:
    """End the agent's open attempts on this call, and the call if it is still going.

    True when the agent had answered. A talk time no callback reported stays unknown, never
    guessed from the hours the call was left open. The call's status is then UNHEARD, not a
    carrier status we cannot know: it says why the call ended, lets staff find such calls, and
    gives way to the carrier's final status if that still arrives.
    """
    answered = None
    for dial in inbound.attempts.select_for_update().filter(agent_id=agent_id):
        if dial.status not in CALL_OVER and _close_open_attempt(dial):
            answered = dial
    if inbound.ended_at is None:
        inbound.ended_at = now
        inbound.status = UNHEARD
        inbound.save(update_fields=["ended_at", "status"])
        record = _matched_record(inbound, CallRecord.Outcome.CONNECTED)
        if record is not None:
            if answered is not None:
                _complete_record(record, now, answered.duration_seconds, CallStatus.COMPLETED)
            else:
                _complete_record(record, now, 0, CANCELED)
    return answered is not None


# --- The agent's screen pop -----------------------------------------------------------------


@dataclass(frozen=True)
class ScreenPop:
    reservation: Reservation | None
    reservation_record: CallRecord | None
    seconds_left: int | None
    inbound: InboundCall | None


def agent_screen_pop(*, agent: Agent, now: datetime | None = None) -> ScreenPop:
    """The call an agent is reserved for or on, with the vendor's tracking data."""
    now = now or timezone.now()
    reservation = Reservation.objects.live(now).select_related("vendor").filter(agent=agent).first()
    inbound = None
    if agent.on_call_since is not None:
        dial = (
            DialAttempt.objects.select_related("inbound_call__call_record__vendor")
            .filter(agent=agent, inbound_call__ended_at__isnull=True)
            .exclude(status__in=CALL_OVER)
            .order_by("-started_at")
            .first()
        )
        inbound = dial.inbound_call if dial else None
    return ScreenPop(
        reservation=reservation,
        reservation_record=_first_record(reservation) if reservation else None,
        seconds_left=reservation.seconds_left(now) if reservation else None,
        inbound=inbound,
    )
