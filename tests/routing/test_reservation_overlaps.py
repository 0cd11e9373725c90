"""The audit `make bench` runs after the load: overlapping holds of one agent or number."""

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from tests.factories import (
    AgentFactory,
    ReservationFactory,
    TransferNumberFactory,
    VendorFactory,
)

pytestmark = pytest.mark.django_db


def reserve(*, agent, number, start, seconds=60, status="expired", ended_after=None, phone="+1"):
    return ReservationFactory(
        vendor=VendorFactory(),
        agent=agent,
        transfer_number=number,
        phone_number=phone,
        ttl_seconds=seconds,
        created_at=start,
        expires_at=start + timedelta(seconds=seconds),
        status=status,
        ended_at=None if ended_after is None else start + timedelta(seconds=ended_after),
    )


def overlaps() -> int:
    out = io.StringIO()
    call_command("reservation_overlaps", stdout=out)
    return int(out.getvalue())


def test_back_to_back_holds_of_one_agent_and_number_do_not_overlap():
    agent, number = AgentFactory(), TransferNumberFactory()
    start = timezone.now()
    reserve(agent=agent, number=number, start=start, phone="+14805550001")
    reserve(agent=agent, number=number, start=start + timedelta(seconds=60), phone="+14805550002")

    assert overlaps() == 0


def test_a_hold_released_early_frees_its_rows_for_the_next():
    agent, number = AgentFactory(), TransferNumberFactory()
    start = timezone.now()
    reserve(agent=agent, number=number, start=start, ended_after=5, phone="+14805550001")
    reserve(agent=agent, number=number, start=start + timedelta(seconds=5), phone="+14805550002")

    assert overlaps() == 0


def test_two_holds_of_one_agent_at_once_are_counted():
    agent = AgentFactory()
    first_number, second_number = TransferNumberFactory.create_batch(2)
    start = timezone.now()
    reserve(agent=agent, number=first_number, start=start, phone="+14805550001")
    reserve(agent=agent, number=second_number, start=start + timedelta(seconds=30),
            phone="+14805550002")  # fmt: skip

    assert overlaps() == 1


def test_two_holds_of_one_number_at_once_are_counted():
    first_agent, second_agent = AgentFactory.create_batch(2)
    number = TransferNumberFactory()
    start = timezone.now()
    reserve(agent=first_agent, number=number, start=start, phone="+14805550001")
    reserve(agent=second_agent, number=number, start=start + timedelta(seconds=59),
            phone="+14805550002")  # fmt: skip

    assert overlaps() == 1
