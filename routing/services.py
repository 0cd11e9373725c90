"""Allocation: reserve the longest-idle free agent and a transfer number long released.

The critical section is one transaction. On PostgreSQL it is one SQL statement (`allocation_sql`):
the agent and number rows are locked with FOR NO KEY UPDATE SKIP LOCKED, so concurrent pings never
wait on each other and never take the same row; partial unique indexes refuse a second live hold
even if this code were wrong. On SQLite the ORM does the same steps and the IMMEDIATE transaction
mode serializes writers instead.
"""

import random
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, connection, transaction
from django.db.models import F, Max, Min, Q
from django.utils import timezone
from phonenumber_field.phonenumber import PhoneNumber, to_python

from config.errors import ApplicationError
from routing.models import Agent, AgentLicense, AgentStatusChange, Reservation, TransferNumber
from vendors.models import Vendor

# The number handed out is the one released longest ago (never held first) among this many free
# numbers, taken in id order from a point of the pool at random: the whole pool when it is no
# larger. Picking from the whole pool in release order would need an index on `held_until`,
# which every ping rewrites: its front fills with dead entries that every ping then walks, more
# of them with every ping until a vacuum (docs/performance.md), and no update of a number is HOT.
# A window this wide still never hands out a number released moments ago while others rested
# longer, and spreads the holds over the pool.
NUMBER_WINDOW = 32

# The moment a statement decides holds by: `now` when the caller gives one (a test's fake clock,
# or the database's clock read earlier in the transaction), else the database's own clock, so
# web machines whose clocks disagree never cut each other's holds short.
NOW = "COALESCE(%(now)s::timestamptz, statement_timestamp())"
EXPIRES = f"({NOW} + make_interval(secs => %(ttl)s))"

# `Agent.objects.free(now)` and `TransferNumber.objects.free(now)` in SQL, for the rows `a` and `t`.
AGENT_IS_FREE = (
    "a.status = 'available' AND a.on_call_since IS NULL "
    f"AND (a.held_until IS NULL OR a.held_until <= {NOW})"
)
NUMBER_IS_FREE = f"t.is_active AND (t.held_until IS NULL OR t.held_until <= {NOW})"


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


@dataclass(frozen=True)
class Allocation:
    reservation: Reservation | None
    agent_count: int


def reservation_lock_caller(*, vendor: Vendor, phone_number: str) -> datetime:
    """Serialize pings of one vendor for one caller until the transaction ends (PostgreSQL;
    SQLite already serializes writers).

    Without it, concurrent repeats of one ping would each skip the agent rows the others hold and
    answer "no agent" instead of the first one's reservation. Per vendor and caller, whatever the
    state: a caller held by a vendor is one caller, not one per state. Only pings of the same
    vendor for the same number ever wait here.

    Returns the database's clock once the lock is held (see `database_now`): the moment the
    ping's transaction decides by.
    """
    if connection.vendor != "postgresql":
        return timezone.now()
    with connection.cursor() as cursor:
        # clock_timestamp(), not now(): the time after any wait for the lock.
        cursor.execute(
            "SELECT clock_timestamp() FROM (SELECT pg_advisory_xact_lock(hashtextextended(%s, 0)))"
            " AS locked",
            [caller_lock_key(vendor_id=vendor.pk, phone_number=phone_number)],
        )
        return cursor.fetchone()[0]


def caller_lock_key(*, vendor_id: int, phone_number: str) -> str:
    """The advisory lock's name for a vendor's caller: the same in both ping paths."""
    return f"caller:{vendor_id}:{phone_number}"


def reservation_find_live(
    *, vendor: Vendor, phone_number: str, now: datetime
) -> Reservation | None:
    """The vendor's live reservation for the caller, in whatever state it was made."""
    return (
        Reservation.objects.select_related("transfer_number")
        .filter(
            vendor=vendor,
            phone_number=phone_number,
            status=Reservation.Status.ACTIVE,
            expires_at__gt=now,
        )
        .first()
    )


def agent_count_free(*, state: str, now: datetime) -> int:
    return Agent.objects.free(now).licensed_for(state).count()


def allocation_sql(*, gate: str = "TRUE") -> str:
    """The CTEs (for a WITH clause) that reserve an agent and a number in one statement.

    Parameters: vendor, phone, state, now (None: the database's clock), ttl. `gate` is an SQL
    condition that must hold for anything to be reserved. The CTE `reservation` returns the new
    row (none when no agent or no number is free), `free_number` the number's id and E.164
    `number`. Every step of the ORM path below, in one round trip: a ping spent most of its time
    in Python building queries.
    """
    return f"""
    licensed AS (
        -- The state's agents (a few of many) by primary key: only they are read and sorted.
        SELECT ARRAY(
            SELECT l.agent_id FROM routing_agentlicense l WHERE l.state = %(state)s
        ) AS ids
    ),
    candidates AS MATERIALIZED (
        -- The state's free agents, read once: for the pick below and for the count.
        SELECT a.id, a.idle_since FROM routing_agent a
        WHERE a.id = ANY((SELECT ids FROM licensed)::bigint[])
          AND {AGENT_IS_FREE}
    ),
    free_agent AS (
        -- Longest idle first; the row is read again to lock it (and to recheck it, should
        -- another ping have taken it meanwhile).
        SELECT a.id
        FROM (SELECT id, idle_since FROM candidates ORDER BY idle_since, id OFFSET 0) AS c
        JOIN routing_agent a ON a.id = c.id
        WHERE ({gate}) AND {AGENT_IS_FREE}
        ORDER BY c.idle_since, c.id
        LIMIT 1
        FOR NO KEY UPDATE OF a SKIP LOCKED
    ),
    free_count AS (
        SELECT count(*) AS n FROM candidates
    ),
    window_start AS (
        -- A point of the pool at random (see NUMBER_WINDOW).
        SELECT lo + floor(random() * (hi - lo + 1))::bigint AS id
        FROM (SELECT min(id) AS lo, max(id) AS hi FROM routing_transfernumber) AS bounds
    ),
    number_window AS MATERIALIZED (
        -- The first free numbers from there on, wrapping round to the start of the pool.
        SELECT w.id, w.held_until FROM (
            (SELECT t.id, t.held_until FROM routing_transfernumber t
             WHERE t.id >= (SELECT id FROM window_start) AND {NUMBER_IS_FREE}
             ORDER BY t.id LIMIT {NUMBER_WINDOW})
            UNION ALL
            (SELECT t.id, t.held_until FROM routing_transfernumber t
             WHERE t.id < (SELECT id FROM window_start) AND {NUMBER_IS_FREE}
             ORDER BY t.id LIMIT {NUMBER_WINDOW})
        ) AS w
        WHERE EXISTS (SELECT 1 FROM free_agent)
        LIMIT {NUMBER_WINDOW}
    ),
    free_number AS (
        -- Released longest ago (never held first) of the window; read again to lock it.
        SELECT t.id, t.number
        FROM (
            SELECT id, held_until FROM number_window ORDER BY held_until NULLS FIRST, id OFFSET 0
        ) AS w
        JOIN routing_transfernumber t ON t.id = w.id
        WHERE {NUMBER_IS_FREE}
        ORDER BY w.held_until ASC NULLS FIRST, w.id
        LIMIT 1
        FOR NO KEY UPDATE OF t SKIP LOCKED
    ),
    stale AS (
        -- The live holds in the way, one probe of a partial unique index each (so at most one
        -- row each), then each row by primary key. The ids are single values on purpose: as a
        -- join or `id = ANY(ARRAY(...))`, a plan made while the table was small scanned it
        -- whole, or scanned every expired hold, and every ping cost more than the last.
        UPDATE routing_reservation r SET status = 'expired', ended_at = r.expires_at
        WHERE r.id IN (
            (SELECT s.id FROM routing_reservation s
             WHERE s.status = 'active' AND s.agent_id = (SELECT id FROM free_agent)),
            (SELECT s.id FROM routing_reservation s
             WHERE s.status = 'active' AND s.transfer_number_id = (SELECT id FROM free_number)),
            (SELECT s.id FROM routing_reservation s
             WHERE s.status = 'active' AND s.vendor_id = %(vendor)s
               AND s.phone_number = %(phone)s)
        )
          AND r.status = 'active' AND r.expires_at <= {NOW}
          AND EXISTS (SELECT 1 FROM free_number)
        RETURNING r.id
    ),
    hold_agent AS (
        UPDATE routing_agent a SET held_until = {EXPIRES}
        FROM free_agent, free_number WHERE a.id = free_agent.id
        RETURNING a.id
    ),
    hold_number AS (
        UPDATE routing_transfernumber t SET held_until = {EXPIRES}
        FROM free_agent, free_number WHERE t.id = free_number.id
        RETURNING t.id
    ),
    reservation AS (
        INSERT INTO routing_reservation (
            vendor_id, agent_id, transfer_number_id, phone_number, state, agent_count,
            ttl_seconds, created_at, expires_at, status, ended_at, released_by_id
        )
        SELECT %(vendor)s, free_agent.id, free_number.id, %(phone)s, %(state)s,
               GREATEST((SELECT n FROM free_count), 1), %(ttl)s, {NOW}, {EXPIRES},
               'active', NULL, NULL
        FROM free_agent, free_number
        -- The stale reservations in the way must be marked before the partial unique indexes
        -- see this row: reading `stale` here makes that UPDATE finish first.
        WHERE (SELECT count(*) FROM stale) >= 0
        RETURNING id, agent_id, transfer_number_id, agent_count
    )"""


def allocation_params(
    *, vendor_id: int, phone_number: str, state: str, ttl_seconds: int, now: datetime | None
) -> dict:
    """`now` None: the statement decides by the database's clock (see NOW)."""
    return {
        "vendor": vendor_id,
        "phone": phone_number,
        "state": state,
        "now": now,
        "ttl": ttl_seconds,
    }


def reservation_from_row(
    *,
    vendor: Vendor,
    phone_number: str,
    state: str,
    ttl_seconds: int,
    now: datetime,
    row: tuple,
) -> Reservation:
    """The Reservation `allocation_sql` inserted, from (id, agent, number id, number, count)."""
    reservation_id, agent_id, number_id, number, agent_count = row
    transfer_number = TransferNumber.from_db("default", ["id", "number"], [number_id, number])
    reservation = Reservation(
        id=reservation_id,
        vendor=vendor,
        agent_id=agent_id,
        transfer_number=transfer_number,
        phone_number=phone_number,
        state=state,
        agent_count=agent_count,
        ttl_seconds=ttl_seconds,
        created_at=now,
        expires_at=now + timedelta(seconds=ttl_seconds),
        status=Reservation.Status.ACTIVE,
    )
    reservation._state.adding = False
    reservation._state.db = "default"
    return reservation


def reservation_create(
    *, vendor: Vendor, phone_number: str, state: str, ttl_seconds: int, now: datetime
) -> Allocation:
    """Reserve one agent and one number for the caller. Call inside transaction.atomic()."""
    create = (
        _reservation_create_in_one_statement
        if connection.vendor == "postgresql"
        else _reservation_create_with_the_orm
    )
    return create(
        vendor=vendor, phone_number=phone_number, state=state, ttl_seconds=ttl_seconds, now=now
    )


def _number_window(now: datetime) -> list[int]:
    """The ids of NUMBER_WINDOW free numbers in id order from a point of the pool at random,
    wrapping round to its start."""
    bounds = TransferNumber.objects.aggregate(lo=Min("id"), hi=Max("id"))
    if bounds["lo"] is None:
        return []
    start = random.randint(bounds["lo"], bounds["hi"])
    free = TransferNumber.objects.free(now).order_by("id").values_list("id", flat=True)
    window = list(free.filter(id__gte=start)[:NUMBER_WINDOW])
    return window + list(free.filter(id__lt=start)[: NUMBER_WINDOW - len(window)])


def _reservation_create_with_the_orm(
    *, vendor: Vendor, phone_number: str, state: str, ttl_seconds: int, now: datetime
) -> Allocation:
    """The same steps as `allocation_sql`, one query each (SQLite; the reference on PostgreSQL)."""
    agent_count = agent_count_free(state=state, now=now)
    if agent_count == 0:
        return Allocation(reservation=None, agent_count=0)
    agent = (
        Agent.objects.free(now)
        .licensed_for(state)
        .order_by("idle_since", "id")
        .select_for_update(skip_locked=True, of=("self",), no_key=True)
        .first()
    )
    if agent is None:
        return Allocation(reservation=None, agent_count=0)
    number = (
        TransferNumber.objects.free(now)
        .filter(pk__in=_number_window(now))
        .order_by(F("held_until").asc(nulls_first=True), "id")
        .select_for_update(skip_locked=True, no_key=True)
        .first()
    )
    if number is None:
        return Allocation(reservation=None, agent_count=0)

    expires_at = now + timedelta(seconds=ttl_seconds)
    # A reservation past its TTL still says "active" until the sweep marks it; mark the ones in
    # the way first, or the partial unique indexes would refuse the new hold.
    Reservation.objects.filter(status=Reservation.Status.ACTIVE, expires_at__lte=now).filter(
        Q(agent=agent) | Q(transfer_number=number) | Q(vendor=vendor, phone_number=phone_number)
    ).update(status=Reservation.Status.EXPIRED, ended_at=F("expires_at"))
    Agent.objects.filter(pk=agent.pk).update(held_until=expires_at)
    TransferNumber.objects.filter(pk=number.pk).update(held_until=expires_at)
    reservation = Reservation.objects.create(
        vendor=vendor,
        agent=agent,
        transfer_number=number,
        phone_number=phone_number,
        state=state,
        agent_count=max(agent_count, 1),
        ttl_seconds=ttl_seconds,
        created_at=now,
        expires_at=expires_at,
    )
    return Allocation(reservation=reservation, agent_count=reservation.agent_count)


def _reservation_create_in_one_statement(
    *, vendor: Vendor, phone_number: str, state: str, ttl_seconds: int, now: datetime
) -> Allocation:
    params = allocation_params(
        vendor_id=vendor.pk,
        phone_number=phone_number,
        state=state,
        ttl_seconds=ttl_seconds,
        now=now,
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"""WITH {allocation_sql()}
            SELECT r.id, r.agent_id, r.transfer_number_id, n.number, r.agent_count
            FROM reservation r, free_number n""",
            params,
        )
        row = cursor.fetchone()
    if row is None:
        return Allocation(reservation=None, agent_count=0)
    reservation = reservation_from_row(
        vendor=vendor,
        phone_number=phone_number,
        state=state,
        ttl_seconds=ttl_seconds,
        now=now,
        row=row,
    )
    return Allocation(reservation=reservation, agent_count=reservation.agent_count)


@transaction.atomic
def reservation_release(
    *, reservation_id: int, now: datetime, actor=None, status: str = Reservation.Status.RELEASED
) -> bool:
    """End a live reservation early and free its agent and number at once.

    For staff releasing a hold and for an agent going offline. Returns False (and changes nothing)
    when the reservation had already ended, its TTL included (the sweep records that one as
    expired, when it ended), so a repeated or late call is harmless.
    """
    reservation = (
        Reservation.objects.select_for_update(no_key=True)
        .filter(pk=reservation_id, status=Reservation.Status.ACTIVE, expires_at__gt=now)
        .first()
    )
    if reservation is None:
        return False
    reservation.status = status
    reservation.ended_at = now
    reservation.released_by = actor
    reservation.save(update_fields=["status", "ended_at", "released_by"])
    # Only undo the hold this reservation placed; a later one may already hold the row.
    Agent.objects.filter(pk=reservation.agent_id, held_until=reservation.expires_at).update(
        held_until=None
    )
    # Released now: the number rests behind those released before it (see NUMBER_WINDOW).
    TransferNumber.objects.filter(
        pk=reservation.transfer_number_id, held_until=reservation.expires_at
    ).update(held_until=now)
    return True


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
        Reservation.objects.select_for_update(no_key=True)
        .filter(
            transfer_number=transfer_number, status=Reservation.Status.ACTIVE, expires_at__gt=now
        )
        .first()
    )
    if reservation is None:
        return None
    reservation.status = Reservation.Status.CONNECTED
    reservation.ended_at = now
    reservation.save(update_fields=["status", "ended_at"])
    # The agent is busy through on_call_since now, not through the reservation's hold.
    Agent.objects.filter(pk=reservation.agent_id).update(on_call_since=now, held_until=None)
    # Released now: the number rests behind those released before it (see NUMBER_WINDOW).
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
        live = Reservation.objects.filter(
            agent=agent, status=Reservation.Status.ACTIVE, expires_at__gt=now
        ).values_list("pk", flat=True)
        for reservation_id in list(live):
            if reservation_release(reservation_id=reservation_id, now=now, actor=actor):
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
    return bool(_due(now).filter(pk=reservation_id).update(**_EXPIRED))


def reservation_expire_due(*, now: datetime) -> int:
    """Mark every active reservation past its TTL expired; returns how many were."""
    return _due(now).update(**_EXPIRED)


def _due(now: datetime):
    return Reservation.objects.filter(status=Reservation.Status.ACTIVE, expires_at__lte=now)


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
