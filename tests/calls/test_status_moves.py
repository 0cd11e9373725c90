"""Statuses are choices, and every move the code makes is one its model declares.

tests/status_guard.py puts a trigger on each status field for the whole test run, so the
telephony, lifecycle, allocation and export tests walk every move they make past the tables.
These tests show the guard is there and refuses what no service does, that the tables speak only
of the fields' choices, and that staff read the statuses' labels.
"""

from datetime import timedelta

import pytest
from django.db import DatabaseError, transaction
from django.utils import timezone

from calls.models import CallExport, CallRecord, CallStatus, DialAttempt, InboundCall
from routing.models import Agent, Reservation, TransferNumber
from tests.status_guard import GUARDED, REFUSAL


def _inbound_call(**values) -> InboundCall:
    defaults = {
        "call_sid": "CA" + "1" * 32,
        "to_number": "+18005550100",
        "from_number": "+14805550123",
        "match": InboundCall.Match.NO_RESERVATION,
        "status": CallStatus.RINGING,
        "received_at": timezone.now(),
    }
    return InboundCall.objects.create(**(defaults | values))


def _refused(queryset, **values) -> str:
    with pytest.raises(DatabaseError) as refusal, transaction.atomic():
        queryset.update(**values)
    return str(refusal.value)


@pytest.mark.django_db
def test_every_declared_move_is_between_the_fields_choices():
    for model, field, transitions in GUARDED:
        choices = set(model._meta.get_field(field).get_choices(include_blank=False))
        values = {value for value, _label in choices}
        for old, news in transitions.items():
            assert old in values or (old == "" and model._meta.get_field(field).blank), (field, old)
            assert news <= values, (model.__name__, field, old, news - values)


def test_the_stored_strings_are_the_carriers_as_before():
    assert sorted(CallStatus.values) == sorted(
        ["queued", "initiated", "ringing", "in-progress", "answered", "completed", "busy",
         "no-answer", "failed", "canceled", "unheard"]
    )  # fmt: skip


@pytest.mark.django_db
def test_a_call_that_ended_cannot_ring_again():
    call = _inbound_call()
    calls = InboundCall.objects.filter(pk=call.pk)
    calls.update(status=CallStatus.IN_PROGRESS)
    calls.update(status=CallStatus.COMPLETED)

    refusal = _refused(calls, status=CallStatus.RINGING)

    assert REFUSAL in refusal and "inboundcall.status" in refusal
    assert calls.get().status == CallStatus.COMPLETED


@pytest.mark.django_db
def test_a_leg_that_rang_out_cannot_be_answered_later():
    call = _inbound_call()
    attempt = DialAttempt.objects.create(
        inbound_call=call,
        destination="sip:alice@demo.invalid",
        attempt=1,
        started_at=timezone.now(),
        status=CallStatus.INITIATED,
    )
    attempts = DialAttempt.objects.filter(pk=attempt.pk)
    attempts.update(status=CallStatus.NO_ANSWER)

    assert REFUSAL in _refused(attempts, status=CallStatus.ANSWERED)
    assert attempts.get().status == CallStatus.NO_ANSWER


@pytest.mark.django_db
def test_a_reservation_that_ended_is_not_live_again(vendors, agent):
    now = timezone.now()
    reservation = Reservation.objects.create(
        vendor=vendors["acme"],
        agent=agent,
        transfer_number=TransferNumber.objects.create(number="+18005550100"),
        phone_number="+14805550123",
        state="AZ",
        agent_count=1,
        ttl_seconds=60,
        created_at=now,
        expires_at=now + timedelta(seconds=60),
    )
    reservations = Reservation.objects.filter(pk=reservation.pk)
    reservations.update(status=Reservation.Status.EXPIRED)

    assert REFUSAL in _refused(reservations, status=Reservation.Status.ACTIVE)
    assert REFUSAL in _refused(reservations, status=Reservation.Status.CONNECTED)


@pytest.mark.django_db
def test_a_completed_call_record_is_never_reserved_again(make_record, vendors):
    record = make_record(vendors["acme"], outcome=CallRecord.Outcome.RESERVED)
    records = CallRecord.objects.filter(pk=record.pk)
    records.update(outcome=CallRecord.Outcome.CONNECTED, call_status=CallStatus.RINGING)
    records.update(outcome=CallRecord.Outcome.COMPLETED, call_status=CallStatus.COMPLETED)

    assert REFUSAL in _refused(records, outcome=CallRecord.Outcome.RESERVED)
    assert REFUSAL in _refused(records, call_status=CallStatus.RINGING)


@pytest.mark.django_db
def test_a_finished_export_does_not_run_again():
    export = CallExport.objects.create(
        source="command", format=CallExport.Format.XLSX, status=CallExport.Status.DONE
    )

    exports = CallExport.objects.filter(pk=export.pk)
    assert REFUSAL in _refused(exports, status=CallExport.Status.RUNNING)


@pytest.mark.django_db
def test_an_agent_moves_between_available_and_offline(agent):
    agents = Agent.objects.filter(pk=agent.pk)
    agents.update(status=Agent.Status.OFFLINE)
    agents.update(status=Agent.Status.AVAILABLE)

    assert agents.get().status == Agent.Status.AVAILABLE


@pytest.mark.django_db
def test_staff_read_the_call_and_leg_statuses_by_their_labels(admin_client):
    call = _inbound_call(status=CallStatus.NO_ANSWER, ended_at=timezone.now())
    DialAttempt.objects.create(
        inbound_call=call,
        destination="sip:alice@demo.invalid",
        attempt=1,
        started_at=timezone.now(),
        status=CallStatus.NO_ANSWER,
    )

    calls_page = admin_client.get("/admin/calls/inboundcall/").content.decode()
    assert "no answer" in calls_page
    assert "no-answer</td>" not in calls_page
    # The filter offers every status by its label, as stored values go in the query string.
    assert "?status__exact=in-progress" in calls_page and ">in progress</a>" in calls_page
    assert "unheard (ended by the stale-call sweep)" in calls_page

    attempts_page = admin_client.get("/admin/calls/dialattempt/").content.decode()
    assert "no answer" in attempts_page

    call_page = admin_client.get(f"/admin/calls/inboundcall/{call.pk}/change/").content.decode()
    assert "no answer" in call_page
