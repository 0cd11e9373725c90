"""The operations floor: what its selectors count, and who sees it (the admin's home)."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from calls.floor.selectors import (
    chart_pings_per_hour,
    chart_transfer_rate_per_day,
    floor_agent_counts,
    floor_calls_now,
    floor_live_holds,
    floor_recent_pings,
    floor_transfer_rate_today,
    floor_vendors_near_caps,
)
from calls.models import CallRecord, InboundCall
from calls.ping.policies import window_starts
from routing.allocation import reservation_create
from tests.factories import (
    AgentFactory,
    CallRecordFactory,
    ReservationFactory,
    TransferNumberFactory,
    UserFactory,
    VendorFactory,
)
from vendors.models import VendorCap, VendorReservationCount

pytestmark = pytest.mark.django_db
Outcome = CallRecord.Outcome
NOW = datetime(2026, 3, 10, 15, 30, tzinfo=UTC)


def floor_of_five_agents(now):
    """One agent doing each thing: free and reserved in AZ, on a call and in wrap-up in TX (the
    one on a call also licensed for AZ), offline in AZ."""
    AgentFactory(name="Fay Free", licensed_states=["AZ"], idle_since=now)
    AgentFactory(name="Rex Reserved", licensed_states=["AZ"], idle_since=now - timedelta(hours=1))
    AgentFactory(name="Cal Oncall", licensed_states=["TX", "AZ"], on_call_since=now)
    AgentFactory(name="Wyn Wrapup", licensed_states=["TX"], held_until=now + timedelta(seconds=30))
    AgentFactory(name="Otto Offline", licensed_states=["AZ"], status="offline")
    TransferNumberFactory()
    vendor = VendorFactory(name="Acme", authorized_states=["AZ"])
    allocation = reservation_create(
        vendor=vendor, phone_number="+14805550100", state="AZ", ttl_seconds=60, now=now
    )
    assert allocation.reservation.agent.name == "Rex Reserved"
    return allocation.reservation


def test_it_counts_agents_by_what_they_are_doing_now_per_state_and_in_all():
    floor_of_five_agents(NOW)

    total, by_state = floor_agent_counts(now=NOW)

    assert total.counts == {"free": 1, "reserved": 1, "on_call": 1, "wrap_up": 1, "offline": 1}
    assert [(row.label, row.counts) for row in by_state] == [
        ("AZ", {"free": 1, "reserved": 1, "on_call": 1, "wrap_up": 0, "offline": 1}),
        ("TX", {"free": 0, "reserved": 0, "on_call": 1, "wrap_up": 1, "offline": 0}),
    ]


def test_a_hold_past_its_ttl_leaves_its_agent_free_on_the_floor():
    floor_of_five_agents(NOW)
    later = NOW + timedelta(seconds=61)

    total, _ = floor_agent_counts(now=later)
    count, holds = floor_live_holds(now=later)

    assert (total.counts["free"], total.counts["reserved"]) == (3, 0)  # wrap-up over too
    assert (count, holds) == (0, [])
    assert floor_live_holds(now=NOW)[0] == 1


def test_it_counts_pings_of_the_last_15_minutes_by_outcome():
    for minutes, outcome in [(1, Outcome.NO_AGENT), (14, Outcome.NO_AGENT), (5, Outcome.EXPIRED)]:
        CallRecordFactory(received_at=NOW - timedelta(minutes=minutes), outcome=outcome)
    CallRecordFactory(received_at=NOW - timedelta(minutes=16), outcome=Outcome.NO_AGENT)

    counts = floor_recent_pings(now=NOW)

    assert counts["no_agent"] == 2 and counts["expired"] == 1 and counts["reserved"] == 0
    assert set(counts) == set(Outcome.values)


def test_todays_transfer_rate_is_connected_per_reservation_since_midnight():
    for outcome in [Outcome.COMPLETED, Outcome.CONNECTED, Outcome.EXPIRED, Outcome.RESERVED]:
        CallRecordFactory(received_at=NOW - timedelta(hours=2), outcome=outcome)
    CallRecordFactory(received_at=NOW - timedelta(hours=2), outcome=Outcome.NO_AGENT)
    CallRecordFactory(received_at=NOW - timedelta(hours=16), outcome=Outcome.EXPIRED)  # yesterday

    today = floor_transfer_rate_today(now=NOW)

    assert (today.reserved, today.connected, today.rate) == (4, 2, 0.5)


def test_calls_in_progress_and_callers_waiting_come_from_inbound_calls_not_ended():
    def call(sid, status, **fields):
        InboundCall.objects.create(
            call_sid=sid, to_number="+18885550000", match="matched", status=status,
            received_at=fields.pop("received_at", NOW - timedelta(minutes=2)), **fields,
        )  # fmt: skip

    call("CA1", "in-progress")
    call("CA2", "ringing")
    call("CA3", "in-progress", queued_at=NOW - timedelta(minutes=1))  # in the queue
    call("CA6", "in-progress", queued_at=NOW - timedelta(minutes=2), dequeued_at=NOW)  # taken
    call("CA4", "completed", ended_at=NOW)
    call("CA5", "in-progress", received_at=NOW - timedelta(hours=7))  # the sweep's to end

    assert floor_calls_now(now=NOW) == type(floor_calls_now(now=NOW))(in_progress=3, waiting=1)


def test_the_hourly_chart_has_24_hours_by_outcome_for_all_vendors_or_one():
    acme, other = VendorFactory(name="Acme"), VendorFactory(name="Other")
    CallRecordFactory(vendor=acme, received_at=NOW - timedelta(minutes=10), outcome="no_agent")
    CallRecordFactory(vendor=other, received_at=NOW - timedelta(minutes=20), outcome="no_agent")
    CallRecordFactory(vendor=acme, received_at=NOW - timedelta(hours=3), outcome="expired")
    CallRecordFactory(vendor=acme, received_at=NOW - timedelta(hours=24), outcome="expired")

    hourly = chart_pings_per_hour(now=NOW)

    assert len(hourly.hours) == 24
    assert hourly.hours[-1] == datetime(2026, 3, 10, 15, tzinfo=UTC)
    assert hourly.hours[0] == datetime(2026, 3, 9, 16, tzinfo=UTC)
    assert hourly.by_outcome["no_agent"][-1] == 2
    assert hourly.by_outcome["expired"][-4] == 1
    assert sum(hourly.by_outcome["expired"]) == 1  # 24 hours back is out of the chart
    assert chart_pings_per_hour(now=NOW, vendor_id=acme.pk).by_outcome["no_agent"][-1] == 1


def test_the_daily_chart_has_30_days_of_transfer_rates():
    acme = VendorFactory(name="Acme")
    for outcome in ["completed", "expired", "expired", "expired"]:
        CallRecordFactory(vendor=acme, received_at=NOW - timedelta(days=2), outcome=outcome)
    CallRecordFactory(received_at=NOW, outcome="connected")

    daily = chart_transfer_rate_per_day(now=NOW)

    assert len(daily.days) == 30 and daily.days[-1].isoformat() == "2026-03-10"
    assert daily.rates[-3] == 25.0 and daily.rates[-1] == 100.0 and daily.rates[0] is None
    assert chart_transfer_rate_per_day(now=NOW, vendor_id=acme.pk).rates[-1] is None


def test_vendors_near_their_caps_are_those_within_a_fifth_of_one():
    near, far = VendorFactory(name="Near Leads"), VendorFactory(name="Far Leads")
    VendorCap.objects.create(vendor=near, most_at_once=5, most_per_hour=100)
    VendorCap.objects.create(vendor=far, state="AZ", most_at_once=10)
    for _ in range(3):
        ReservationFactory(vendor=near, created_at=NOW)
    CallRecordFactory(vendor=near, outcome="connected", received_at=NOW)  # a call in progress
    ReservationFactory(vendor=far, created_at=NOW)
    hour, _ = window_starts(NOW)
    VendorReservationCount.objects.create(
        vendor=near, state="", period="hour", starts_at=hour, reservations=79
    )

    caps = floor_vendors_near_caps(now=NOW)

    # 4 of 5 at once is near (80 %); 79 of 100 this hour and 1 of 10 are not.
    assert caps.any_caps
    assert [(c.vendor, c.scope, c.limit, c.used, c.most) for c in caps.near] == [
        ("Near Leads", "all states", "at once", 4, 5)
    ]


def test_the_floor_says_when_no_vendor_has_caps():
    assert floor_vendors_near_caps(now=NOW) == type(floor_vendors_near_caps(now=NOW))(
        any_caps=False, near=[]
    )


# --- The pages ----------------------------------------------------------------------------------


def tile(page: str, name: str) -> str:
    found = re.search(rf'id="tile-{name}"[^>]*>\s*<span class="floor-number">([^<]*)<', page)
    assert found, name
    return found.group(1).strip()


def test_operations_land_on_the_floor_with_links_to_act(operations_client):
    floor_of_five_agents(timezone.now())

    page = operations_client.get("/admin/").content.decode()

    assert "<h1>Operations floor</h1>" in page
    assert tile(page, "agents-reserved") == "1" and tile(page, "live-holds") == "1"
    assert 'hx-get="/admin/floor/live/"' in page and "vendor/htmx/htmx.min.js" in page
    assert "Release a hold on the reservations page" in page
    assert 'id="floor-near-caps"' in page and "No vendor caps are set." in page
    assert "/admin/vendors/vendor/" in page  # the usual list of what the login may open


def test_analysts_see_the_floor_read_only(analyst_client):
    floor_of_five_agents(timezone.now())

    page = analyst_client.get("/admin/").content.decode()

    assert "<h1>Operations floor</h1>" in page and tile(page, "agents-on_call") == "1"
    assert "Release a hold" not in page and "/admin/routing/agent/" not in page


def test_the_live_part_and_charts_answer_staff_only(analyst_client, client):
    UserFactory(username="nobody")
    live = analyst_client.get("/admin/floor/live/")
    assert live.status_code == 200 and live.content.decode().startswith("{#") is False
    assert 'id="floor-live"' in live.content.decode()
    chart = analyst_client.get("/admin/floor/charts/pings-per-hour.json").json()
    assert len(chart["labels"]) == 24 and chart["datasets"][0]["label"] == "reserved"

    assert client.get("/admin/floor/live/").status_code == 302  # to the login
    # htmx polling after the login ended: told to reload the page (to the login form), rather
    # than given the login page to swap into the floor.
    polled = client.get("/admin/floor/live/", headers={"HX-Request": "true"})
    assert (polled.status_code, polled["HX-Refresh"]) == (204, "true")
    assert client.get("/admin/floor/charts/pings-per-hour.json").status_code == 302


def test_a_chart_for_a_vendor_that_does_not_exist_is_a_clear_400(analyst_client):
    for vendor in ["999999", "abc", "1;drop"]:
        response = analyst_client.get(
            f"/admin/floor/charts/transfer-rate-per-day.json?vendor={vendor}"
        )
        assert response.status_code == 400
        assert response.json()["status"] == 400
        assert response.json()["data"]["message"] == "No such vendor."
        assert response.json()["data"]["requestId"] == response["X-Request-ID"]
    assert analyst_client.get("/admin/floor/charts/nothing.json").status_code == 404
