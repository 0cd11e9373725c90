"""The funnel summary: per vendor and per state, what became of a period's pings."""

import re
from datetime import UTC, datetime

from calls.exports.reports import FunnelRow, call_funnel_summary
from calls.models import CallRecord

FUNNEL_URL = "/admin/calls/callrecord/funnel/"
Outcome = CallRecord.Outcome


def _funnel_records(vendors, make_record):
    acme, beta = vendors["acme"], vendors["beta"]
    for outcome in (
        Outcome.RESERVED,
        Outcome.CONNECTED,
        Outcome.COMPLETED,
        Outcome.COMPLETED,
        Outcome.EXPIRED,
        Outcome.REPEAT,
    ):
        make_record(acme, outcome=outcome, state="AZ")
    make_record(acme, outcome=Outcome.NO_AGENT, state="CA")
    make_record(beta, outcome=Outcome.REJECTED, state="TX")
    make_record(beta, outcome=Outcome.EXPIRED, state="TX")
    make_record(beta, outcome=Outcome.COMPLETED, state="TX", minutes=60 * 24 * 40)  # outside


def test_it_counts_where_each_ping_of_the_period_stands(vendors, make_record):
    _funnel_records(vendors, make_record)

    summary = call_funnel_summary(
        since=datetime(2025, 9, 1, tzinfo=UTC), until=datetime(2025, 9, 2, tzinfo=UTC)
    )

    assert summary.by_vendor == [
        FunnelRow("Acme Leads", pings=7, reserved=5, repeats=1, no_agent=1, rejected=0,
                  connected=3, expired=1),
        FunnelRow("Beta Media", pings=2, reserved=1, repeats=0, no_agent=0, rejected=1,
                  connected=0, expired=1),
    ]  # fmt: skip
    assert summary.by_state == [
        FunnelRow("AZ", pings=6, reserved=5, repeats=1, connected=3, expired=1),
        FunnelRow("CA", pings=1, no_agent=1),
        FunnelRow("TX", pings=2, reserved=1, rejected=1, expired=1),
    ]
    assert summary.total == FunnelRow(
        "All", pings=9, reserved=6, repeats=1, no_agent=1, rejected=1, connected=3, expired=2
    )
    assert summary.by_vendor[0].transfer_rate == 3 / 5
    assert summary.by_vendor[0].pending == 1
    assert summary.by_state[1].transfer_rate is None


def test_the_admin_page_shows_the_table_and_chart(analyst_client, vendors, make_record):
    _funnel_records(vendors, make_record)

    page = analyst_client.get(FUNNEL_URL, {"since": "2025-09-01", "until": "2025-09-01"})

    assert page.status_code == 200
    html = page.content.decode()
    assert "<h2>By vendor</h2>" in html and "<h2>By state</h2>" in html
    assert '<td>Acme Leads</td><td class="num">7</td><td class="num">5</td>' in html
    assert '<td class="num">60%</td>' in html  # Acme: 3 connected of 5 reserved
    assert 'title="connected: 3" style="width:42.857%;background:#2e7d32"' in html
    assert not re.search(r'(src|href)="(https?:)?//', html)  # nothing loaded from elsewhere


def test_the_admin_page_defaults_to_the_last_seven_days_and_checks_its_period(analyst_client):
    page = analyst_client.get(FUNNEL_URL)
    assert page.status_code == 200
    assert b"No call records in this period." in page.content

    page = analyst_client.get(FUNNEL_URL, {"since": "2025-09-05", "until": "2025-09-01"})
    assert page.status_code == 200
    assert page.context["summary"] is None
    assert b"The end of the period must come after its start." in page.content


def test_the_admin_page_refuses_a_period_beyond_the_calendar(analyst_client):
    for params in ({"until": "9999-12-31"}, {"since": "0001-01-01T00:00:00+05:00"}):
        page = analyst_client.get(FUNNEL_URL, params)

        assert page.status_code == 200, params
        assert page.context["summary"] is None
        assert (
            b"This date is out of range; use one between 0001-01-01 and 9999-12-30, UTC."
            in page.content
        )


def test_a_viewer_who_may_not_export_sees_the_funnel_but_not_the_export(call_viewer_client):
    assert call_viewer_client.get(FUNNEL_URL).status_code == 200
    assert call_viewer_client.get("/admin/calls/callrecord/export/").status_code == 403


def test_the_export_audit_list_is_readable(analyst_client, analyst, superuser_client, records):
    analyst_client.post("/admin/calls/callrecord/export/", {"format": "xlsx"})

    page = superuser_client.get("/admin/calls/callexport/")

    assert page.status_code == 200
    assert analyst.username.encode() in page.content
