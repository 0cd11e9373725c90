"""Routing's services: holds ending (released, connected, expired), agents' calls and presence,
and staff's changes to the pool. Allocation, and the rules it shares with them, is in
routing.allocation.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from phonenumber_field.phonenumber import PhoneNumber, to_python

from config.errors import ApplicationError
from routing.models import Agent, AgentLicense, AgentStatusChange, Reservation, TransferNumber
from routing.signals import reservation_released


def database_now() -> datetime:
    """The database's clock: what holds are created, judged live and expired by.

    Every web machine and worker shares it, whatever their own clocks say. On SQLite the database
    runs in this process, on this machine's clock: the same as Python's.
    """
    if connection.vendor != "postgresql":
        return timezone.now()
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement_timestamp()")
        return cursor.fetchone()[0]


# The reason recorded when an agent going offline released their hold.
AGENT_OFFLINE_REASON = "Its agent went offline."


class ReleaseReasonMissing(ApplicationError):
    status = 400
    message = "Give the reason for releasing the reservation."


@transaction.atomic
def reservation_release(
    *,
    reservation_id: int,
    now: datetime,
    actor=None,
    reason: str = "",
    status: str = Reservation.Status.RELEASED,
) -> bool:
    """End a live reservation early and free its agent and number at once.

    For staff releasing a hold (who, and the reason they gave) and for an agent going offline.
    Returns False (and changes nothing) when the reservation had already ended, its TTL included
    (the sweep records that one as expired, when it ended), so a repeated or late call is
    harmless. Its call record follows in the same transaction (routing.signals).
    """
    reason = " ".join(reason.split())[: Reservation._meta.get_field("release_reason").max_length]
    reservation = (
        Reservation.objects.live(now)
        .select_for_update(no_key=True)
        .filter(pk=reservation_id)
        .first()
    )
    if reservation is None:
        return False
    reservation.status = status
    reservation.ended_at = now
    reservation.released_by = actor
    reservation.release_reason = reason
    reservation.save(update_fields=["status", "ended_at", "released_by", "release_reason"])
    # Only undo the hold this reservation placed; a later one may already hold the row.
    Agent.objects.filter(pk=reservation.agent_id, held_until=reservation.expires_at).update(
        held_until=None
    )
    # Released now: the number rests behind those released before it (see
    # routing.allocation.NUMBER_WINDOW).
    TransferNumber.objects.filter(
        pk=reservation.transfer_number_id, held_until=reservation.expires_at
    ).update(held_until=now)
    reservation_released.send(sender=Reservation, reservation_id=reservation.pk, now=now)
    return True


def reservation_release_by_staff(*, reservation_id: int, now: datetime, actor, reason: str) -> bool:
    """Staff let a hold go: the reason is required, and recorded with who gave it."""
    if not reason.strip():
        raise ReleaseReasonMissing()
    return reservation_release(reservation_id=reservation_id, now=now, actor=actor, reason=reason)


# --- Calls arriving and agent presence --------------------------------------------------------


class InvalidAgentStatus(ApplicationError):
    status = 400
    message = "Status must be 'available' or 'offline'."


def reservation_connect(*, transfer_number: TransferNumber, now: datetime) -> Reservation | None:
    """End the number's live reservation as connected; the agent is on the call from now.

    Call inside transaction.atomic(). The reservation row is locked with the live condition in
    the query: a second arrival on PostgreSQL waits for the first, then finds the row no longer
    matches, so one reservation is never connected twice. None when nothing live holds the number.
    """
    reservation = (
        Reservation.objects.live(now)
        .select_for_update(no_key=True)
        .filter(transfer_number=transfer_number)
        .first()
    )
    if reservation is None:
        return None
    reservation.status = Reservation.Status.CONNECTED
    reservation.ended_at = now
    reservation.save(update_fields=["status", "ended_at"])
    # The agent is busy through on_call_since now, not through the reservation's hold.
    Agent.objects.filter(pk=reservation.agent_id).update(on_call_since=now, held_until=None)
    # Released now: the number rests behind those released before it (see
    # routing.allocation.NUMBER_WINDOW).
    TransferNumber.objects.filter(
        pk=reservation.transfer_number_id, held_until=reservation.expires_at
    ).update(held_until=now)
    return reservation


def agent_claim_for_call(
    *, state: str, now: datetime, exclude_ids: Iterable[int] = ()
) -> Agent | None:
    """Take the longest-idle free agent licensed for `state` for a call ringing now.

    Call inside transaction.atomic(). Locked like allocation (SKIP LOCKED), so a ping and a call
    never take the same agent.
    """
    agent = (
        Agent.objects.free(now)
        .licensed_for(state)
        .exclude(pk__in=list(exclude_ids))
        .order_by("idle_since", "id")
        .select_for_update(skip_locked=True, of=("self",), no_key=True)
        .first()
    )
    if agent is None:
        return None
    Agent.objects.filter(pk=agent.pk).update(on_call_since=now, held_until=None)
    agent.on_call_since, agent.held_until = now, None
    return agent


@transaction.atomic
def agent_call_end(
    *, agent_id: int, now: datetime, talked: bool, on_call_since: datetime | None = None
) -> bool:
    """The agent's call (or ringing) is over. False when they were not on one (a repeat).

    After a conversation the idle clock restarts and the agent is held for their wrap-up time;
    a call that never reached them (the caller hung up while it rang) changes neither. With
    `on_call_since`, only the call that started then is ended, not one the agent took since.
    """
    on_a_call = Q(on_call_since__isnull=False)
    if on_call_since is not None:
        on_a_call &= Q(on_call_since=on_call_since)
    agent = Agent.objects.select_for_update(no_key=True).filter(on_a_call, pk=agent_id).first()
    if agent is None:
        return False
    agent.on_call_since = None
    fields = ["on_call_since"]
    if talked:
        agent.last_call_ended_at = now
        agent.idle_since = now
        agent.held_until = now + timedelta(seconds=agent.wrap_up_seconds)
        fields += ["last_call_ended_at", "idle_since", "held_until"]
    agent.save(update_fields=fields)
    return True


@transaction.atomic
def agent_call_talked_after_all(*, agent_id: int, ended_at: datetime) -> bool:
    """A call ended as one that never reached the agent turned out to be a conversation.

    What a talked call gives, from when it ended: the idle clock restarts and the agent is held
    for their wrap-up time. False, changing nothing, when they are on another call by now (its
    own end restarts the clock). A hold placed since (a ping's reservation) is never shortened:
    the agent is held until the later of that hold and the wrap-up's end. Repeating it changes
    nothing more.
    """
    agent = (
        Agent.objects.select_for_update(no_key=True)
        .filter(pk=agent_id, on_call_since__isnull=True)
        .first()
    )
    if agent is None:
        return False
    wrap_up_ends = ended_at + timedelta(seconds=agent.wrap_up_seconds)
    agent.last_call_ended_at = max(agent.last_call_ended_at or ended_at, ended_at)
    agent.idle_since = max(agent.idle_since, ended_at)
    if agent.held_until is None or agent.held_until < wrap_up_ends:
        agent.held_until = wrap_up_ends
    agent.save(update_fields=["last_call_ended_at", "idle_since", "held_until"])
    return True


@transaction.atomic
def agent_mark_unreachable(*, agent_id: int, now: datetime) -> None:
    """A call rang out (no answer, busy, failed): the agent walked away, so stop offering them.

    Call inside the call's transaction. The agent is on that call, so no ping holds them and going
    offline has no reservation to release.
    """
    agent_set_status(
        agent_id=agent_id,
        status=Agent.Status.OFFLINE,
        now=now,
        source=AgentStatusChange.Source.TELEPHONY,
    )
    Agent.objects.filter(pk=agent_id).update(on_call_since=None)


@dataclass(frozen=True)
class AgentStatusResult:
    agent: Agent
    released_reservation_ids: list[int]


def agent_set_status(
    *, agent_id: int, status: object, now: datetime, source: str, actor=None
) -> AgentStatusResult:
    """Go available or offline: every change of an agent's status goes through here.

    Going offline releases a live reservation at once. A change (not a repeat of the status the
    agent has) is recorded as an AgentStatusChange, with `actor` (None for telephony and the
    system) and `source`, in the transaction that makes it.

    Two steps, so locks are always taken reservation before agent, as a call arriving takes them:
    first the agent goes offline under its row lock (a ping allocating them right now commits
    before that, and none can pick them after), then each reservation they still hold is released.
    """
    if status not in Agent.Status.values:
        raise InvalidAgentStatus()
    with transaction.atomic():
        agent = Agent.objects.select_for_update(no_key=True).get(pk=agent_id)
        before = agent.status
        if status == Agent.Status.OFFLINE:
            agent.status = Agent.Status.OFFLINE
            agent.save(update_fields=["status"])
        elif agent.status != Agent.Status.AVAILABLE:
            # Coming available restarts the idle clock (repeating "available" does not).
            agent.status = Agent.Status.AVAILABLE
            agent.idle_since = now
            agent.save(update_fields=["status", "idle_since"])
        if agent.status != before:
            AgentStatusChange.objects.create(
                agent=agent,
                from_status=before,
                to_status=agent.status,
                changed_by=actor,
                source=source,
            )
    released: list[int] = []
    if status == Agent.Status.OFFLINE:
        live = Reservation.objects.live(now).filter(agent=agent).values_list("pk", flat=True)
        for reservation_id in list(live):
            if reservation_release(
                reservation_id=reservation_id, now=now, actor=actor, reason=AGENT_OFFLINE_REASON
            ):
                released.append(reservation_id)
        agent.refresh_from_db()
    return AgentStatusResult(agent=agent, released_reservation_ids=released)


# --- Expiry ------------------------------------------------------------------------------------


def reservation_expire(*, reservation_id: int, now: datetime) -> bool:
    """Mark one reservation expired if its TTL passed while it was still active.

    A conditional update, so running it twice, late, or after the call arrived (status no longer
    active) changes nothing. The agent and number need no release: their `held_until` is this
    reservation's `expires_at`, already past, and the agent's `idle_since` is left alone so they
    keep their place in the longest-idle order.
    """
    return bool(Reservation.objects.lapsed(now).filter(pk=reservation_id).update(**_EXPIRED))


def reservation_expire_due(*, now: datetime) -> int:
    """Mark every active reservation past its TTL expired; returns how many were."""
    return Reservation.objects.lapsed(now).update(**_EXPIRED)


# It ended when its TTL ran out, not when a job noticed.
_EXPIRED = {"status": Reservation.Status.EXPIRED, "ended_at": F("expires_at")}

# --- Staff admin ------------------------------------------------------------------------------


class TransferNumbersInvalid(ApplicationError):
    """Pasted transfer numbers that cannot be added; `problems` names each one."""

    status = 400

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


def transfer_numbers_add(*, text: str) -> list[TransferNumber]:
    """Add the numbers in `text` (one a line, or separated by commas) to the pool.

    All or nothing: any number that is not a valid E.164 number, or is already in the pool or
    twice in the text, refuses the whole paste, so a fix and a re-paste is safe.
    """
    entries = [entry.strip() for entry in re.split(r"[\n,;]+", text) if entry.strip()]
    if not entries:
        raise TransferNumbersInvalid(["Give at least one number."])
    problems, numbers = [], []
    for entry in entries:
        number = to_python(entry)
        if not (isinstance(number, PhoneNumber) and number.is_valid()):
            problems.append(f"{entry} is not a valid phone number in E.164 form, e.g. +18775703926")
            continue
        e164 = number.as_e164
        if e164 in numbers:
            problems.append(f"{e164} is given twice")
            continue
        numbers.append(e164)
    existing = set(
        TransferNumber.objects.filter(number__in=numbers).values_list("number", flat=True)
    )
    problems += [f"{number} is already in the pool" for number in numbers if number in existing]
    if problems:
        raise TransferNumbersInvalid(problems)
    try:
        with transaction.atomic():
            return [TransferNumber.objects.create(number=number) for number in numbers]
    except IntegrityError:
        # Another paste added one of them since the check above: all or nothing still.
        raise TransferNumbersInvalid(
            ["Some of these numbers were added to the pool meanwhile; paste again."]
        ) from None


def transfer_number_set_active(*, number_ids: list[int], is_active: bool) -> int:
    """Deactivated numbers are handed out no more; a live hold on one runs to its end."""
    return (
        TransferNumber.objects.filter(pk__in=number_ids)
        .exclude(is_active=is_active)
        .update(is_active=is_active)
    )


@transaction.atomic
def agent_set_licenses(*, agent: Agent, states: list[str]) -> None:
    """Make the agent's licence rows exactly `states`."""
    wanted = set(states)
    agent.licenses.exclude(state__in=wanted).delete()
    have = set(agent.licenses.values_list("state", flat=True))
    AgentLicense.objects.bulk_create(
        [AgentLicense(agent=agent, state=state) for state in sorted(wanted - have)]
    )
