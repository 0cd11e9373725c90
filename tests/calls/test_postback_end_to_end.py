"""A whole call, from the ping to the billable postback, on a real Celery worker and beat and a
real receiving server: the vendor's endpoint hears reserved, completed and billable, each signed
as the vendor guide says."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from postback_receiver import guide_python_check, postback_receiver

from calls.models import CallRecord
from calls.postbacks.models import PostbackDelivery
from calls.postbacks.services import postback_endpoint_create
from calls.settlement.models import BillingRule
from tests.factories import VendorFactory, floor_build

pytestmark = pytest.mark.django_db(transaction=True)

KEY = "7c3e9a15-2b4d-4f68-9e0a-1d5c7b3f2a46"
PING = {"vendorKey": KEY, "phoneNumber": "+14801234567", "stateCode": "AZ", "lead_id": "L-900"}


@pytest.fixture
def vendor(db, settings):
    settings.POSTBACK_ALLOW_PRIVATE_HOSTS = True  # the receiver listens on 127.0.0.1
    vendor, _ = VendorFactory.with_key(name="Acme Leads", authorized_states=["AZ"], key=KEY)
    floor_build(agents={"AZ": 1}, numbers=1)
    BillingRule.objects.create(
        vendor=vendor,
        effective_from=timezone.now() - timedelta(days=1),
        min_talk_seconds=90,
        payout=Decimal("25.00"),
        currency="USD",
    )
    return vendor


def test_a_call_that_talks_past_the_minimum_reaches_the_vendor_as_a_billable_postback(
    vendor, ping, carrier, celery_stack
):
    with postback_receiver() as receiver:
        _, secret = postback_endpoint_create(
            vendor=vendor, url=receiver.url(), events=["reserved", "completed", "billable"]
        )
        with celery_stack.running(beat=True):
            answer = ping(PING).json()["data"]
            carrier.voice(sid="CA900", to=answer["transferTarget"], caller=PING["phoneNumber"])
            carrier.leg_status(parent="CA900", attempt=1, status="in-progress")
            carrier.dial_status(sid="CA900", attempt=1, status="completed", duration=120)
            carrier.call_status(sid="CA900", status="completed", duration=125)
            received = receiver.wait_for(3, timeout=30)

    record = CallRecord.objects.get(request_id=answer["requestId"])
    assert (record.outcome, record.billable, record.payout) == ("completed", "yes", Decimal("25"))
    bodies = {json.loads(r.body)["event"]: (r, json.loads(r.body)) for r in received}
    assert sorted(bodies) == ["billable", "completed", "reserved"]
    billable, body = bodies["billable"]
    assert guide_python_check()(secret, billable.headers["X-Signature"], billable.body)
    assert body["requestId"] == answer["requestId"]
    assert body["tracking"] == {"lead_id": "L-900"}
    assert (body["outcome"], body["talkTimeSeconds"], body["billable"]) == (
        "completed", 120, "yes"
    )  # fmt: skip
    assert body["payout"] == {"amount": "25.00", "currency": "USD"}
    assert body["callerIdMatch"] is True
    assert set(PostbackDelivery.objects.values_list("status", flat=True)) == {"delivered"}
