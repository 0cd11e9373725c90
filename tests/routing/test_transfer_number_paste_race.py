"""Two pastes of the same transfer number at once: one adds it, the other is told, never a 500.

PostgreSQL only: there the second paste's check cannot see the first's uncommitted row, and its
insert waits on the unique index until the first commits. Each thread has its own connection.
"""

import threading

import pytest
from django.db import transaction

from routing.models import TransferNumber
from routing.services import TransferNumbersInvalid, transfer_numbers_add
from tests.conftest import second_waits_on_first

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

NUMBER = "+18775709999"


def test_the_second_of_two_pastes_at_once_is_refused_as_all_or_nothing():
    first_inserted = threading.Event()
    first_may_commit = threading.Event()
    outcome: dict[str, object] = {}

    def first_paste():
        with transaction.atomic():  # uncommitted until the test lets it go
            TransferNumber.objects.create(number=NUMBER)
            first_inserted.set()
            first_may_commit.wait(10)

    def second_paste():
        first_inserted.wait(10)
        try:
            transfer_numbers_add(text=f"+18775708888\n{NUMBER}")
            outcome["second"] = "added"
        except TransferNumbersInvalid as refusal:
            outcome["second"] = refusal.problems

    waited = second_waits_on_first(
        first_paste, second_paste, first_ready=first_inserted, first_may_finish=first_may_commit
    )

    assert waited  # the second paste's insert waited on the first's row
    assert outcome["second"] == [
        "Some of these numbers were added to the pool meanwhile; paste again."
    ]
    assert list(TransferNumber.objects.values_list("number", flat=True)) == [NUMBER]
