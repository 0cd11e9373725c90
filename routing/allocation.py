"""Allocation: reserve the longest-idle free agent and a transfer number long released.

In one place, in three parts:
- The rules, each defined once, its ORM form beside its SQL form: an agent is free, a number is
  free, a reservation is live (or has lapsed: past its TTL but not yet marked), and the caller's
  lock key. The querysets (`Agent.objects.free(now)`, `Reservation.objects.live(now)`...) and the
  statement below both use them; tests/routing/test_allocation_rules.py proves the forms agree.
- The ORM path: one query each step, inside the caller's transaction. SQLite runs it (its
  IMMEDIATE transaction mode serializes writers), and PostgreSQL does whenever the statement
  below cannot answer a ping (a repeat, or another ping for the same caller in flight).
- The PostgreSQL statement: the whole ping (caller lock, live check, allocation, and a record of
  the ping the caller's app describes) in one round trip, as a ping spent most of its time in
  Python building queries. The agent and number rows are locked with FOR NO KEY UPDATE SKIP
  LOCKED, so concurrent pings never wait on each other and never take the same row.

Partial unique indexes refuse a second live hold whatever either path does.
tests/calls/test_ping_one_statement.py proves the two paths write the same rows.
"""

import logging
import random
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, F, Max, Min, OuterRef, Q
from django.utils import timezone

from routing.models import Agent, AgentLicense, Reservation, TransferNumber, WaitingCaller
from vendors.models import Vendor

logger = logging.getLogger(__name__)

# The number handed out is the one released longest ago (never held first) among this many free
# numbers, taken in id order from a point of the pool at random: the whole pool when it is no
# larger. Picking from the whole pool in release order would need an index on `held_until`,
# which every ping rewrites: its front fills with dead entries that every ping then walks (more
# for every ping until a vacuum) and no update of a number is HOT. A window this wide still never
# hands out a number released moments ago while others rested longer, and spreads the holds over
# the pool.
NUMBER_WINDOW = 32

# --- The rules ----------------------------------------------------------------------------------
# Each as a Q for the ORM and as SQL for the statement, whose rows are `a` (agent), `t` (number)
# and `r` (reservation).

# The moment the statement decides holds by: `now` when the caller gives one (a test's fake clock,
# or the database's clock read earlier in the transaction), else the database's own clock, so
# web machines whose clocks disagree never cut each other's holds short.
NOW = "COALESCE(%(now)s::timestamptz, statement_timestamp())"
EXPIRES = f"({NOW} + make_interval(secs => %(ttl)s))"


def _not_held(now) -> Q:
    return Q(held_until__isnull=True) | Q(held_until__lte=now)


def agent_is_idle(now) -> Q:
    """Available, not on a call, and not held at `now` (by a reservation, or wrap-up)."""
    return Q(status=Agent.Status.AVAILABLE, on_call_since__isnull=True) & _not_held(now)


AGENT_IS_IDLE = (
    f"a.status = '{Agent.Status.AVAILABLE}' AND a.on_call_since IS NULL "
    f"AND (a.held_until IS NULL OR a.held_until <= {NOW})"
)
# Available and not on a call: free, or held (by a reservation or wrap-up) until `held_until`.
AGENT_IS_AVAILABLE = f"a.status = '{Agent.Status.AVAILABLE}' AND a.on_call_since IS NULL"


def agent_soonest_free_at(*, state: str, now: datetime) -> datetime | None:
    """When the soonest hold or wrap-up of the state's agents ends (None: none is held)."""
    return (
        Agent.objects.licensed_for(state)
        .filter(status=Agent.Status.AVAILABLE, on_call_since__isnull=True, held_until__gt=now)
        .aggregate(soonest=Min("held_until"))["soonest"]
    )


def caller_is_waiting(now) -> Q:
    """A caller in the queue at `now`: waiting, their longest wait not over (past it, they are
    on their way to overflow and hold no agent back)."""
    return Q(status=WaitingCaller.Status.WAITING, wait_until__gt=now)


CALLER_IS_WAITING = f"w.status = '{WaitingCaller.Status.WAITING}' AND w.wait_until > {NOW}"


def agent_is_free(now) -> Q:
    """Idle, and no caller waits in a state the agent is licensed for: a waiting caller has the
    first call on an agent who becomes free, whether a callback frees them or time does (a hold
    or a wrap-up running out), so no ping or new call takes them first (routing.queue)."""
    waiting = WaitingCaller.objects.filter(caller_is_waiting(now))
    return agent_is_idle(now) & (
        ~Exists(waiting)
        | ~Exists(
            AgentLicense.objects.filter(agent=OuterRef("pk"), state__in=waiting.values("state"))
        )
    )


# The first NOT EXISTS is read once per statement: with nobody waiting (the common case) no
# agent's licences are looked at.
AGENT_IS_FREE = (
    f"{AGENT_IS_IDLE} AND ("
    f"NOT EXISTS (SELECT 1 FROM routing_waitingcaller w WHERE {CALLER_IS_WAITING}) "
    "OR NOT EXISTS (SELECT 1 FROM routing_agentlicense l WHERE l.agent_id = a.id AND l.state IN "
    f"(SELECT w.state FROM routing_waitingcaller w WHERE {CALLER_IS_WAITING})))"
)


def number_is_free(now) -> Q:
    """In the pool (active) and not held at `now`."""
    return Q(is_active=True) & _not_held(now)


NUMBER_IS_FREE = f"t.is_active AND (t.held_until IS NULL OR t.held_until <= {NOW})"


def reservation_is_live(now) -> Q:
    """Active and within its TTL at `now`: it holds its agent, its number and its caller.

    (`Reservation.is_live` is the same for one row in Python.)
    """
    return Q(status=Reservation.Status.ACTIVE, expires_at__gt=now)


RESERVATION_IS_LIVE = f"r.status = '{Reservation.Status.ACTIVE}' AND r.expires_at > {NOW}"


def reservation_has_lapsed(now) -> Q:
    """Past its TTL but still marked active: it holds nothing, and is marked expired before a new
    hold of its agent, number or caller (the partial unique indexes would refuse that one)."""
    return Q(status=Reservation.Status.ACTIVE, expires_at__lte=now)


RESERVATION_HAS_LAPSED = f"r.status = '{Reservation.Status.ACTIVE}' AND r.expires_at <= {NOW}"


def caller_lock_key(*, vendor_id: int, phone_number: str) -> str:
    """The name of a vendor's caller's advisory lock (PostgreSQL), the same in both paths.

    Per vendor and caller, whatever the state: a caller held by a vendor is one caller, not one
    per state.
    """
    return f"caller:{vendor_id}:{phone_number}"


# The advisory lock's id, from the key in the parameter `caller`.
CALLER_LOCK_ID = "hashtextextended(%(caller)s, 0)"

# --- The ORM path -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Allocation:
    reservation: Reservation | None
    agent_count: int


def reservation_lock_caller(*, vendor: Vendor, phone_number: str) -> datetime:
    """Serialize pings of one vendor for one caller until the transaction ends (PostgreSQL;
    SQLite already serializes writers).

    Without it, concurrent repeats of one ping would each skip the agent rows the others hold and
    answer "no agent" instead of the first one's reservation. Only pings of the same vendor for
    the same number ever wait here.

    Returns the database's clock once the lock is held (see routing.services.database_now): the
    moment the ping's transaction decides by.
    """
    if connection.vendor != "postgresql":
        return timezone.now()
    with connection.cursor() as cursor:
        # clock_timestamp(), not now(): the time after any wait for the lock.
        cursor.execute(
            f"SELECT clock_timestamp() FROM (SELECT pg_advisory_xact_lock({CALLER_LOCK_ID}))"
            " AS locked",
            {"caller": caller_lock_key(vendor_id=vendor.pk, phone_number=phone_number)},
        )
        return cursor.fetchone()[0]


def reservation_find_live(
    *, vendor: Vendor, phone_number: str, now: datetime
) -> Reservation | None:
    """The vendor's live reservation for the caller, in whatever state it was made."""
    return (
        Reservation.objects.live(now)
        .select_related("transfer_number")
        .filter(vendor=vendor, phone_number=phone_number)
        .first()
    )


def reservation_create(
    *, vendor: Vendor, phone_number: str, state: str, ttl_seconds: int, now: datetime
) -> Allocation:
    """Reserve one agent and one number for the caller, with the ORM: the same steps as the
    statement below, one query each. Call inside transaction.atomic()."""
    agent_count = Agent.objects.free(now).licensed_for(state).count()
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
    # Mark the lapsed holds in the way first, or the partial unique indexes would refuse the new.
    Reservation.objects.lapsed(now).filter(
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


# --- The PostgreSQL statement -------------------------------------------------------------------


@dataclass(frozen=True)
class RecordInsert:
    """The row the statement writes with what it decided: the ping's record, in its app's table.

    `columns` maps each column to an SQL expression, of parameters (`%(name)s`, named apart from
    the statement's own, STATEMENT_PARAMETERS) and of the outcome's values, written `{name}`
    (see OUTCOME_VALUES). The row is written unless the statement leaves the ping to the ORM path.
    """

    table: str
    columns: dict[str, str]


@dataclass(frozen=True)
class PolicyChecks:
    """The policies the statement decides before it locks any agent or number row, as SQL of
    the caller's app (which knows its tables).

    `ctes`: CTE definitions ending with one named `refusal`, of one row (reason text,
    retry_after integer): a NULL reason admits the ping; '' (LEFT_TO_TRANSACTION) leaves it to
    the transactional path, writing nothing. They may read ADMISSIBLE (the caller's
    lock is held and the caller holds nothing: a repeat is never refused) and NOW.
    `after_reservation`: CTE definitions run once the statement has reserved, which may read
    the `reservation` CTE (e.g. to count reservations for caps). Both end without a comma, and
    take parameters named apart from the statement's own (STATEMENT_PARAMETERS).
    """

    ctes: str
    after_reservation: str = ""


# A refusal's reason that decides nothing: the transactional path answers the ping.
LEFT_TO_TRANSACTION = ""

# No policies: nothing refused.
NO_POLICY_CHECKS = PolicyChecks(
    ctes="refusal AS (SELECT NULL::text AS reason, NULL::integer AS retry_after)"
)

# Whether this ping may be decided at all: it holds its caller's lock and the caller holds
# nothing (else it is a repeat, answered by the ORM path, and no policy refuses it).
ADMISSIBLE = "((SELECT acquired FROM caller_lock) AND NOT EXISTS (SELECT 1 FROM live))"

# What a RecordInsert's expressions may read of the outcome: NULL, except the moment and the TTL,
# when nothing was reserved (no agent or no number free).
OUTCOME_VALUES = {
    "refusal": "(SELECT reason FROM refusal)",  # the policy's reason code, NULL when admitted
    "reservation_id": "r.id",
    "agent_id": "r.agent_id",
    "transfer_number": "n.number",  # E.164
    "agent_count": "r.agent_count",
    "ttl_seconds": "%(ttl)s",
    "now": NOW,
}

# The statement's own parameters, which reservation_create_in_one_statement fills.
STATEMENT_PARAMETERS = frozenset({"caller", "vendor", "phone", "state", "now", "ttl"})

_PARAMETER = re.compile(r"%\((\w+)\)s")


@dataclass(frozen=True)
class AllocationStatement:
    """The statement, built once (allocation_statement) and run on every ping."""

    # With `%(name)s` placeholders: to read, or to run elsewhere (the pgbench script).
    sql: str
    # With PostgreSQL's own `$n` placeholders, and the parameters' names in their order: what runs.
    positional_sql: str
    parameter_names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class StatementReservation:
    """What the statement decided and recorded."""

    now: datetime  # the moment it decided by
    reservation_id: int | None = None  # None: refused, or no agent (or no number) was free
    transfer_number: str = ""  # E.164
    agent_count: int = 0
    refusal: str | None = None  # a policy's reason code
    retry_after: int | None = None  # the policy's retry hint, when it gave one
    # No agent free: when the soonest hold or wrap-up of the state's agents ends (None: none).
    soonest_agent_free_at: datetime | None = None


def allocation_statement(
    *, record: RecordInsert, policies: PolicyChecks = NO_POLICY_CHECKS
) -> AllocationStatement:
    """Build the statement that decides the policies, reserves (or not) and writes `record`;
    build it once."""
    columns = ", ".join(record.columns)
    expressions = ", ".join(_with_outcome_values(sql) for sql in record.columns.values())
    clashes = {name for sql in record.columns.values() for name in _PARAMETER.findall(sql)}
    if clashes & STATEMENT_PARAMETERS:
        raise ValueError(f"The record's parameters {clashes & STATEMENT_PARAMETERS} are taken.")
    after = f"{policies.after_reservation}," if policies.after_reservation else ""
    sql = _minified(
        _STATEMENT.format(
            table=record.table,
            columns=columns,
            values=expressions,
            policies=policies.ctes,
            after_reservation=after,
        )
    )
    names: list[str] = []

    def placeholder(match: re.Match) -> str:
        if match[1] not in names:
            names.append(match[1])
        return f"${names.index(match[1]) + 1}"

    positional = _PARAMETER.sub(placeholder, sql)
    return AllocationStatement(sql=sql, positional_sql=positional, parameter_names=tuple(names))


def reservation_create_in_one_statement(
    *,
    statement: AllocationStatement,
    vendor_id: int,
    phone_number: str,
    state: str,
    ttl_seconds: int,
    now: datetime | None,
    record_params: dict,
    policy_params: dict | None = None,
) -> StatementReservation | None:
    """The common ping on PostgreSQL in one statement: reserve (or not) and write the record.

    None, having written nothing, when the ping is not the common case: a live reservation for
    the caller, another ping for the same caller in flight, or a lost race for the caller's one
    live hold. The ORM path (lock the caller, find the live reservation, reservation_create) then
    answers it, as a repeat. `now` None: the statement decides by the database's clock.
    """
    params = {
        **record_params,
        **(policy_params or {}),
        "caller": caller_lock_key(vendor_id=vendor_id, phone_number=phone_number),
        "vendor": vendor_id,
        "phone": phone_number,
        "state": state,
        "now": now,
        "ttl": ttl_seconds,
    }
    values = [params[name] for name in statement.parameter_names]
    try:
        # One statement is atomic by itself: no BEGIN/COMMIT round trips unless a caller has
        # a transaction open (then a savepoint, so a lost race does not spoil it).
        if connection.in_atomic_block:
            with transaction.atomic():
                row = _execute(statement, values)
        else:
            row = _execute(statement, values)
    except IntegrityError:
        logger.info("Concurrent ping for the same caller; answering as a repeat")
        return None
    acquired, live_id, reservation_id, number, agent_count, decided_at = row[:6]
    refusal, retry_after, soonest_free = row[6:]
    if not acquired or live_id is not None or refusal == LEFT_TO_TRANSACTION:
        return None
    if reservation_id is None:
        return StatementReservation(
            now=decided_at,
            refusal=refusal,
            retry_after=retry_after,
            soonest_agent_free_at=soonest_free,
        )
    return StatementReservation(
        now=decided_at,
        reservation_id=reservation_id,
        transfer_number=number,
        agent_count=agent_count,
    )


def _execute(statement: AllocationStatement, values: list) -> tuple:
    # Django's cursors bind parameters on the client, which rules out prepared statements; with
    # a server-side binding cursor psycopg prepares the statement after DATABASE_PREPARE_THRESHOLD
    # runs, and PostgreSQL no longer plans it on every ping. A RawCursor, one of those, takes the
    # statement with PostgreSQL's own `$n` placeholders: psycopg then has nothing to parse on
    # each ping (it caches its parsing of `%(name)s` statements only up to 4 KiB).
    # What Django's cursor() does around its own cursor, with its public parts: the health check
    # (CONN_HEALTH_CHECKS), a connection, and the wrapper that logs queries and maps errors.
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    connection.validate_thread_sharing()
    with connection.wrap_database_errors:
        raw_cursor = psycopg.RawCursor(connection.connection)
    # The backend's own wrappers (PostgreSQL's adds COPY); django-stubs types their argument as
    # the wrapper itself, where Django passes the driver's cursor.
    wrap = connection.make_debug_cursor if connection.queries_logged else connection.make_cursor
    with wrap(raw_cursor) as cursor:  # type: ignore[arg-type]
        cursor.execute(statement.positional_sql, values)
        return cursor.fetchone()


def _with_outcome_values(sql: str) -> str:
    def value(match: re.Match) -> str:
        if match[1] not in OUTCOME_VALUES:
            raise ValueError(f"{{{match[1]}}} is none of the outcome's values {OUTCOME_VALUES}.")
        return OUTCOME_VALUES[match[1]]

    return re.sub(r"\{(\w+)\}", value, sql)


def _minified(sql: str) -> str:
    # Sent to PostgreSQL whenever a connection prepares it, and read by anyone debugging it: no
    # comments, and no space around parentheses, commas or comparisons (the statement quotes no
    # such characters).
    sql = re.sub(r"\s+", " ", re.sub(r"--[^\n]*", "", sql))
    return re.sub(r" ?([(),]|<=|>=|=|<|>) ?", r"\1", sql).strip()


# This ping reserves: it holds the caller's lock, the caller holds nothing yet, and no policy
# refused it.
_GATE = "(SELECT ok FROM go)"

# The record's {table}, {columns} and {values} (in doubled braces) are filled in once built.
# The statuses the statement writes and reads, as the model's choices store them.
_ACTIVE, _EXPIRED = Reservation.Status.ACTIVE.value, Reservation.Status.EXPIRED.value

_STATEMENT = f"""
    WITH caller_lock AS (
        -- Pings for one caller take turns; one that would have to wait leaves this
        -- statement and is answered by the ORM path instead.
        SELECT pg_try_advisory_xact_lock({CALLER_LOCK_ID}) AS acquired
    ),
    live AS (
        SELECT r.id FROM routing_reservation r
        -- The vendor's live hold for the caller, whatever its state: a ping in another
        -- state is a repeat all the same.
        WHERE r.vendor_id = %(vendor)s AND r.phone_number = %(phone)s
          AND {RESERVATION_IS_LIVE}
        LIMIT 1
    ),
    {{policies}},
    go AS (
        -- Policies first: a refused ping locks no agent or number row.
        SELECT {ADMISSIBLE} AND (SELECT reason FROM refusal) IS NULL AS ok
    ),
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
        WHERE ({_GATE}) AND {AGENT_IS_FREE}
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
        -- The lapsed holds in the way, one probe of a partial unique index each (so at most one
        -- row each), then each row by primary key. The ids are single values on purpose: as a
        -- join or `id = ANY(ARRAY(...))`, a plan made while the table was small scanned it
        -- whole, or scanned every expired hold, and every ping cost more than the last.
        UPDATE routing_reservation r SET status = '{_EXPIRED}', ended_at = r.expires_at
        WHERE r.id IN (
            (SELECT s.id FROM routing_reservation s
             WHERE s.status = '{_ACTIVE}' AND s.agent_id = (SELECT id FROM free_agent)),
            (SELECT s.id FROM routing_reservation s
             WHERE s.status = '{_ACTIVE}' AND s.transfer_number_id = (SELECT id FROM free_number)),
            (SELECT s.id FROM routing_reservation s
             WHERE s.status = '{_ACTIVE}' AND s.vendor_id = %(vendor)s
               AND s.phone_number = %(phone)s)
        )
          AND {RESERVATION_HAS_LAPSED}
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
               '{_ACTIVE}', NULL, NULL
        FROM free_agent, free_number
        -- The lapsed reservations in the way must be marked before the partial unique indexes
        -- see this row: reading `stale` here makes that UPDATE finish first.
        WHERE (SELECT count(*) FROM stale) >= 0
        RETURNING id, agent_id, transfer_number_id, agent_count
    ),
    {{after_reservation}}
    record AS (
        INSERT INTO {{table}} ({{columns}})
        SELECT {{values}}
        FROM (SELECT 1) AS one
        LEFT JOIN reservation r ON TRUE
        LEFT JOIN free_number n ON r.id IS NOT NULL
        WHERE {ADMISSIBLE} AND (SELECT reason FROM refusal) IS DISTINCT FROM ''
        RETURNING id
    )
    SELECT (SELECT acquired FROM caller_lock), (SELECT id FROM live),
           r.id, n.number, r.agent_count, {NOW},
           (SELECT reason FROM refusal), (SELECT retry_after FROM refusal),
           CASE WHEN r.id IS NULL AND {_GATE} THEN (
               -- No agent: when the soonest hold or wrap-up of the state's agents ends.
               SELECT min(a.held_until) FROM routing_agent a
               WHERE a.id = ANY((SELECT ids FROM licensed)::bigint[])
                 AND {AGENT_IS_AVAILABLE} AND a.held_until > {NOW}
           ) END
    FROM (SELECT 1) AS one
    LEFT JOIN reservation r ON TRUE
    LEFT JOIN free_number n ON r.id IS NOT NULL
    """
