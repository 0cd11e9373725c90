"""Allocation: reserve the longest-idle free agent and the longest-released transfer number.

The critical section is one transaction. On PostgreSQL the agent and number rows are locked with
FOR NO KEY UPDATE SKIP LOCKED, so concurrent pings never wait on each other and never take the
same row; partial unique indexes refuse a second live hold even if this code were wrong. On SQLite
the IMMEDIATE transaction mode serializes writers instead.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import F, Q

from routing.models import Agent, Reservation, TransferNumber
from vendors.models import Vendor


@dataclass(frozen=True)
class Allocation:
    reservation: Reservation | None
    agent_count: int


def reservation_lock_caller(*, vendor: Vendor, phone_number: str, state: str) -> None:
    """Serialize pings for one caller until the transaction ends (PostgreSQL; SQLite already
    serializes writers).

    Without it, concurrent repeats of one ping would each skip the agent rows the others hold and
    answer "no agent" instead of the first one's reservation. Only pings for the same vendor, number
    and state ever wait here.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                [f"caller:{vendor.pk}:{phone_number}:{state}"],
            )


def reservation_find_live(
    *, vendor: Vendor, phone_number: str, state: str, now: datetime
) -> Reservation | None:
    return (
        Reservation.objects.select_related("transfer_number")
        .filter(
            vendor=vendor,
            phone_number=phone_number,
            state=state,
            status=Reservation.Status.ACTIVE,
            expires_at__gt=now,
        )
        .first()
    )


def agent_count_free(*, state: str, now: datetime) -> int:
    return Agent.objects.free(now).licensed_for(state).count()


def reservation_create(
    *, vendor: Vendor, phone_number: str, state: str, ttl_seconds: int, now: datetime
) -> Allocation:
    """Reserve one agent and one number for the caller. Call inside transaction.atomic()."""
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
        Q(agent=agent)
        | Q(transfer_number=number)
        | Q(vendor=vendor, phone_number=phone_number, state=state)
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


@transaction.atomic
def reservation_release(
    *, reservation_id: int, now: datetime, actor=None, status: str = Reservation.Status.RELEASED
) -> bool:
    """End a live reservation early and free its agent and number at once.

    For staff releasing a hold and for an agent going offline. Returns False (and changes nothing)
    when the reservation had already ended, so a repeated or late call is harmless.
    """
    reservation = (
        Reservation.objects.select_for_update(no_key=True)
        .filter(pk=reservation_id, status=Reservation.Status.ACTIVE)
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
    # The number counts as released now, so it goes to the back of the longest-released order.
    TransferNumber.objects.filter(
        pk=reservation.transfer_number_id, held_until=reservation.expires_at
    ).update(held_until=now)
    return True
