"""Sandbox pings for one caller at once, on PostgreSQL: one hold and the rest repeats, as live
pings are, under the same caller lock; no routing row touched. (Without the lock, several of
each round's pings answered as new holds.)"""

import json
import threading

import pytest
from django.db import connection
from django.test import Client

from calls.models import CallRecord
from routing.models import Reservation
from tests.conftest import PING_URL
from tests.factories import VendorFactory, floor_build
from vendors.services import vendor_key_create

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

PINGS_AT_ONCE = 8
ROUNDS = 3


def test_concurrent_sandbox_pings_for_one_caller_hold_once_and_repeat(db):
    vendor = VendorFactory(authorized_states=["AZ"])
    _, key = vendor_key_create(vendor=vendor, sandbox=True)
    floor_build(agents={"AZ": 2}, numbers=2)

    for round_number in range(ROUNDS):
        body = {"vendorKey": key, "phoneNumber": f"+1480555{round_number + 2000:04d}"}
        barrier = threading.Barrier(PINGS_AT_ONCE)
        answers: list = [None] * PINGS_AT_ONCE

        def send(index: int, body=body, barrier=barrier, answers=answers) -> None:
            try:
                barrier.wait(timeout=10)
                answers[index] = Client().post(
                    PING_URL, data=json.dumps(body), content_type="application/json"
                )
            finally:
                connection.close()

        threads = [threading.Thread(target=send, args=(i,)) for i in range(PINGS_AT_ONCE)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)

        assert [answer.status_code for answer in answers] == [200] * PINGS_AT_ONCE
        targets = {answer.json()["data"]["transferTarget"] for answer in answers}
        assert targets == {"+18775550100"}
        outcomes = sorted(
            CallRecord.objects.filter(phone_number=body["phoneNumber"]).values_list(
                "outcome", flat=True
            )
        )
        assert outcomes == ["repeat"] * (PINGS_AT_ONCE - 1) + ["reserved"]
    assert not Reservation.objects.exists()
