"""Celery tasks for the reservation lifecycle: thin, idempotent, and given ids only."""

import logging

from celery import shared_task
from django.utils import timezone

from calls.services import call_record_expire, call_records_expire_due

logger = logging.getLogger(__name__)


@shared_task
def expire_reservation(reservation_id: int) -> None:
    """Enqueued for the moment a reservation's TTL passes."""
    expiry = call_record_expire(reservation_id=reservation_id, now=timezone.now())
    if expiry.reservations or expiry.call_records:
        logger.info("Reservation %s expired", reservation_id)


@shared_task
def expire_due_reservations() -> None:
    """Beat's sweep: catches whatever a lost, late or never-run task missed."""
    expiry = call_records_expire_due(now=timezone.now())
    if expiry.reservations or expiry.call_records:
        logger.info(
            "Sweep expired %s reservations and %s call records",
            expiry.reservations,
            expiry.call_records,
        )
