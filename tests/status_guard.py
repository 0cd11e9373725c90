"""Every status move the code makes, checked against the moves the models declare.

For the whole test run, each status field gets a trigger that refuses an update moving it in a
way its `Transitions` table does not list. The services' moves are conditional updates, ORM
saves and SQL statements alike; a trigger sees them all, so every test that drives a call, a
reservation, an agent or an export through its life walks its moves past the tables.
"""

from django.db import connection

from calls.models import CallExport, CallRecord, DialAttempt, InboundCall
from calls.postbacks.models import PostbackDelivery
from config.transitions import Transitions
from routing.models import Agent, Reservation, WaitingCaller

# (model, field, its moves): every status-like field there is.
GUARDED = [
    (Agent, "status", Agent.STATUS_TRANSITIONS),
    (Reservation, "status", Reservation.STATUS_TRANSITIONS),
    (WaitingCaller, "status", WaitingCaller.STATUS_TRANSITIONS),
    (CallRecord, "outcome", CallRecord.OUTCOME_TRANSITIONS),
    (CallRecord, "call_status", CallRecord.CALL_STATUS_TRANSITIONS),
    (CallRecord, "billable", CallRecord.BILLABLE_TRANSITIONS),
    (InboundCall, "status", InboundCall.STATUS_TRANSITIONS),
    (DialAttempt, "status", DialAttempt.STATUS_TRANSITIONS),
    (CallExport, "status", CallExport.STATUS_TRANSITIONS),
    (PostbackDelivery, "status", PostbackDelivery.STATUS_TRANSITIONS),
]

REFUSAL = "status move not declared"


def _moves_sql(transitions: Transitions) -> str:
    moves = sorted(f"{old}>{new}" for old, news in transitions.items() for new in news)
    return ", ".join("'" + move.replace("'", "''") + "'" for move in moves) or "''"


def _statements(model, field: str, transitions: Transitions) -> list[str]:
    table = model._meta.db_table
    column = model._meta.get_field(field).column
    name = f"status_guard_{table}_{column}"
    moves = _moves_sql(transitions)
    move = f"OLD.{column} || '>' || NEW.{column}"
    message = f"{REFUSAL}: {table}.{column}"
    if connection.vendor == "postgresql":
        return [
            f"""CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF {move} NOT IN ({moves}) THEN
                    RAISE EXCEPTION '{message} from % to %', OLD.{column}, NEW.{column};
                END IF;
                RETURN NEW;
            END $$""",
            f"DROP TRIGGER IF EXISTS {name} ON {table}",
            f"""CREATE TRIGGER {name} BEFORE UPDATE OF {column} ON {table} FOR EACH ROW
            WHEN (OLD.{column} IS DISTINCT FROM NEW.{column}) EXECUTE FUNCTION {name}()""",
        ]
    return [
        f"DROP TRIGGER IF EXISTS {name}",
        f"""CREATE TRIGGER {name} BEFORE UPDATE OF {column} ON {table} FOR EACH ROW
        WHEN OLD.{column} IS NOT NEW.{column} AND {move} NOT IN ({moves})
        BEGIN SELECT RAISE(ABORT, '{message}'); END""",
    ]


def status_guards_install() -> None:
    with connection.cursor() as cursor:
        for model, field, transitions in GUARDED:
            for statement in _statements(model, field, transitions):
                cursor.execute(statement)
