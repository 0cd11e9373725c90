"""Background jobs for calls: thin, they take an id and call one service."""

import logging
import time

from django.conf import settings

from calls.exports.jobs import call_export_run
from calls.heartbeat import worker_heartbeat_record
from calls.lifecycle import call_record_expire, call_records_expire_due
from calls.retention import call_records_purge
from calls.telephony.queue import waiting_callers_sweep
from calls.telephony.service import agent_calls_end_stale
from config.celery import app
from routing.services import database_now

logger = logging.getLogger(__name__)


@app.task(
    name="calls.export_xlsx",
    # A million-row workbook takes minutes, longer than the default task limit.
    time_limit=settings.EXPORT_TASK_TIME_LIMIT,
    soft_time_limit=settings.EXPORT_TASK_TIME_LIMIT - 30,
    ignore_result=True,
)
def call_export_xlsx(export_id: int) -> None:
    call_export_run(export_id=export_id)


# The purge's own limits: archiving a month of a large operator's records takes minutes.
PURGE_TASK_TIME_LIMIT = 60 * 60


@app.task(
    name="calls.purge_call_records",
    time_limit=PURGE_TASK_TIME_LIMIT,
    soft_time_limit=PURGE_TASK_TIME_LIMIT - 60,
    ignore_result=True,
)
def purge_call_records() -> None:
    """Beat's daily retention run; stops well within its limit, the next run goes on."""
    purged = call_records_purge(
        now=database_now(), deadline=time.monotonic() + PURGE_TASK_TIME_LIMIT - 300
    )
    if purged.months:
        logger.info(
            "Retention: %s call records deleted from %s months before %s%s",
            purged.deleted_rows,
            len(purged.months),
            purged.cutoff,
            "" if purged.finished else " (stopped at its deadline; the next run goes on)",
        )


# --- Reservation lifecycle: idempotent, so a task run twice, late or after the call does nothing.


@app.task(name="calls.expire_reservation", ignore_result=True)
def expire_reservation(reservation_id: int) -> None:
    """Queued for the moment a reservation's TTL passes."""
    expiry = call_record_expire(reservation_id=reservation_id, now=database_now())
    if expiry.reservations or expiry.call_records:
        logger.info("Reservation %s expired", reservation_id)


@app.task(name="calls.expire_due_reservations", ignore_result=True)
def expire_due_reservations() -> None:
    """Beat's sweep: catches whatever a lost, late or never-run task missed."""
    expiry = call_records_expire_due(now=database_now())
    worker_heartbeat_record()
    if expiry.reservations or expiry.call_records:
        logger.info(
            "Sweep expired %s reservations and %s call records",
            expiry.reservations,
            expiry.call_records,
        )


# --- Telephony's safety net: idempotent, an agent already freed is left alone.


@app.task(name="calls.end_stale_agent_calls", ignore_result=True)
def end_stale_agent_calls() -> None:
    """Beat's sweep for agents left on a call that no carrier callback will ever end."""
    ended = agent_calls_end_stale(now=database_now())
    if ended:
        logger.info("Freed %s agents left on calls no callback ended", ended)


@app.task(name="calls.offer_waiting_callers", ignore_result=True)
def offer_waiting_callers() -> None:
    """Beat's sweep: agents that time freed go to the callers waiting for them."""
    assigned = waiting_callers_sweep(now=database_now())
    if assigned:
        logger.info("Gave %s agents to waiting callers", assigned)
