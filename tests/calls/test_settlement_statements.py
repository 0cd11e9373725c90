"""Vendor statements and scorecards, on a set of records whose every number is counted here."""

import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from calls.settlement.models import BillingRule
from calls.settlement.scorecards import vendor_scorecards
from calls.settlement.statements import statement_period, vendor_statement
from tests.factories import CallRecordFactory, ReservationFactory, VendorFactory

DAY_1 = datetime(2026, 3, 2, 9, tzinfo=UTC)  # a Monday
DAY_2 = DAY_1 + timedelta(days=1)
MARCH = (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))


def _record(vendor, at, outcome, *, billable="no", why="", payout=None, rule=None, **values):
    reserved = outcome in ("reserved", "connected", "completed", "expired", "released")
    return CallRecordFactory(
        vendor=vendor,
        received_at=at,
        outcome=outcome,
        reservation=ReservationFactory(vendor=vendor, created_at=at) if reserved else None,
        billable=billable,
        not_billable_reason=why,
        payout=payout if payout is not None else (Decimal("0") if billable == "no" else None),
        payout_currency=rule.currency if rule and billable == "yes" else "",
        billing_rule=rule if billable == "yes" else None,
        **values,
    )


@pytest.fixture
def seeded(db):
    """Acme: on day 1, 2 billable calls (25.00 each), 1 under the minimum, 1 duplicate, 1 expired,
    1 repeat, 1 no agent; on day 2, 1 billable call, 1 call still running. Other Leads: 1
    billable (10.00), 1 with a caller-id mismatch not answered. A record from February, outside."""
    acme = VendorFactory(name="Acme Leads")
    other = VendorFactory(name="Other Leads")
    acme_rule = BillingRule.objects.create(
        vendor=acme, effective_from=datetime(2026, 1, 1, tzinfo=UTC), payout=Decimal("25.00")
    )
    other_rule = BillingRule.objects.create(
        vendor=other, effective_from=datetime(2026, 1, 1, tzinfo=UTC), payout=Decimal("10.00")
    )
    talked = {"connected_at": DAY_1, "caller_id_matches": True}
    for minutes, seconds in ((0, 300), (5, 120)):
        _record(acme, DAY_1 + timedelta(minutes=minutes), "completed", billable="yes",
                payout=Decimal("25.00"), rule=acme_rule, duration_seconds=seconds,
                **talked)  # fmt: skip
    _record(acme, DAY_1 + timedelta(minutes=10), "completed", why="under_minimum",
            duration_seconds=60, **talked)  # fmt: skip
    _record(acme, DAY_1 + timedelta(minutes=15), "completed", why="duplicate",
            duration_seconds=200, **talked)  # fmt: skip
    _record(acme, DAY_1 + timedelta(minutes=20), "expired", why="no_call")
    _record(acme, DAY_1 + timedelta(minutes=21), "repeat", why="repeat")
    _record(acme, DAY_1 + timedelta(minutes=22), "no_agent", why="no_agent")
    _record(acme, DAY_2, "completed", billable="yes", payout=Decimal("25.00"), rule=acme_rule,
            duration_seconds=100, **talked)  # fmt: skip
    _record(acme, DAY_2 + timedelta(minutes=1), "connected", billable="pending",
            connected_at=DAY_2, caller_id_matches=False)  # fmt: skip
    _record(other, DAY_1, "completed", billable="yes", payout=Decimal("10.00"), rule=other_rule,
            duration_seconds=500, **talked)  # fmt: skip
    _record(other, DAY_1 + timedelta(minutes=1), "completed", why="not_answered",
            duration_seconds=0, connected_at=DAY_1, caller_id_matches=False)  # fmt: skip
    _record(acme, datetime(2026, 2, 27, tzinfo=UTC), "completed", billable="yes",
            payout=Decimal("25.00"), rule=acme_rule, duration_seconds=100, **talked)  # fmt: skip
    return {"acme": acme, "other": other}


def test_the_periods_are_a_day_a_week_from_monday_and_a_month():
    wednesday = date(2026, 3, 4)
    assert statement_period(period="day", day=wednesday) == (
        datetime(2026, 3, 4, tzinfo=UTC),
        datetime(2026, 3, 5, tzinfo=UTC),
    )
    assert statement_period(period="week", day=wednesday) == (
        datetime(2026, 3, 2, tzinfo=UTC),
        datetime(2026, 3, 9, tzinfo=UTC),
    )
    assert statement_period(period="month", day=date(2026, 12, 31)) == (
        datetime(2026, 12, 1, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
    )


def test_a_statement_counts_by_day_billable_and_not_by_reason(seeded):
    statement = vendor_statement(vendor=seeded["acme"], since=MARCH[0], until=MARCH[1])

    day_1, day_2 = statement.days
    assert (day_1.day, day_1.pings, day_1.reserved, day_1.calls) == (DAY_1.date(), 7, 5, 4)
    assert (day_1.billable, day_1.not_billable, day_1.pending) == (2, 5, 0)
    assert day_1.by_reason == {"under_minimum": 1, "duplicate": 1, "no_call": 1, "repeat": 1,
                               "no_agent": 1}  # fmt: skip
    assert (day_1.payouts, day_1.talk_seconds) == ({"USD": Decimal("50.00")}, 420)
    assert (day_2.pings, day_2.billable, day_2.pending, day_2.payouts) == (
        2, 1, 1, {"USD": Decimal("25.00")},
    )  # fmt: skip
    total = statement.total
    assert (total.pings, total.billable, total.not_billable, total.pending) == (9, 3, 5, 1)
    assert total.payout_text == "75.00 USD"


def test_the_command_prints_the_statement_and_its_csv(seeded, capsys):
    call_command("vendor_statement", "--vendor", "acme leads", "--since", "2026-03-01",
                 "--until", "2026-03-31")  # fmt: skip
    table = capsys.readouterr().out
    lines = table.splitlines()
    assert (
        lines[0]
        == "Statement for Acme Leads, 2026-03-01 00:00 to 2026-04-01 00:00 UTC (end excluded)"
    )
    assert lines[1].split() == [
        "day", "pings", "reserved", "calls", "billable", "not", "billable", "pending",
        "no:", "no_call", "no:", "under_minimum", "no:", "duplicate", "no:", "repeat", "no:",
        "no_agent", "payout",
    ]  # fmt: skip
    assert lines[3].split() == ["2026-03-02", "7", "5", "4", "2", "5", "0", "1", "1", "1", "1",
                                "1", "50.00", "USD"]  # fmt: skip
    assert lines[-1].split() == ["Total", "9", "7", "6", "3", "5", "1", "1", "1", "1", "1", "1",
                                 "75.00", "USD"]  # fmt: skip

    call_command("vendor_statement", "--vendor", str(seeded["acme"].pk), "--since", "2026-03-01",
                 "--until", "2026-03-31", "--csv")  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [row["day"] for row in rows] == ["2026-03-02", "2026-03-03", "total"]
    assert (rows[-1]["billable"], rows[-1]["payout"], rows[-1]["currency"]) == ("3", "75.00", "USD")
    assert rows[0]["not_billable_duplicate"] == "1"


def test_the_command_refuses_an_unknown_vendor_and_a_bad_date(seeded):
    with pytest.raises(CommandError, match="no vendor is named 'Nobody'"):
        call_command("vendor_statement", "--vendor", "Nobody", "--since", "2026-03-01",
                     "--until", "2026-03-31")  # fmt: skip
    with pytest.raises(CommandError, match="--since"):
        call_command("vendor_statement", "--vendor", "Acme Leads", "--since", "March",
                     "--until", "2026-03-31")  # fmt: skip


def test_an_analyst_reads_the_statement_in_the_admin_and_downloads_it(seeded, analyst_client):
    url = "/admin/calls/callrecord/statement/"
    query = {"vendor": seeded["acme"].pk, "period": "month", "day": "2026-03-15"}

    page = analyst_client.get(url, query).content.decode()
    csv_file = analyst_client.get(url, {**query, "format": "csv"})

    assert "Acme Leads: 2026-03-01 00:00 to 2026-03-31 23:59:59 UTC" in page
    assert "Billed before (window)" in page  # a reason the month has
    assert "Sandbox key" not in page  # and one it has not
    assert '<strong id="statement-billable">3</strong>' in page
    assert '<strong id="statement-payout">75.00 USD</strong>' in page
    assert "<td>2026-03-02</td>" in page and "<td>2026-03-03</td>" in page
    assert csv_file["Content-Type"].startswith("text/csv")
    assert csv_file.content.decode().splitlines()[-1].startswith("total,9,7,6,3,5,1,")


def test_the_statement_page_says_what_is_wrong_with_a_custom_period(seeded, analyst_client):
    page = analyst_client.get(
        "/admin/calls/callrecord/statement/",
        {"vendor": seeded["acme"].pk, "period": "custom", "since": "2026-03-05"},
    )
    assert page.status_code == 200
    assert "A custom period needs its start and its end." in page.content.decode()


def test_operations_cannot_open_statements_or_scorecards(seeded, operations_client):
    assert operations_client.get("/admin/calls/callrecord/statement/").status_code == 403
    assert operations_client.get("/admin/calls/callrecord/scorecards/").status_code == 403


def test_the_scorecards_count_each_vendor(seeded):
    cards = vendor_scorecards(since=MARCH[0], until=MARCH[1])

    acme, other = cards.rows
    assert (acme.vendor, acme.pings, acme.reserved, acme.repeats, acme.no_agent) == (
        "Acme Leads", 9, 7, 1, 1,
    )  # fmt: skip
    assert (acme.connected, acme.completed, acme.billable, acme.duplicates) == (6, 5, 3, 1)
    assert acme.transfer_rate == pytest.approx(6 / 9)
    assert acme.match_rate == pytest.approx(6 / 7)
    assert acme.caller_id_mismatch_rate == pytest.approx(1 / 6)
    assert acme.duplicate_rate == pytest.approx(1 / 5)
    assert acme.average_talk_seconds == pytest.approx((300 + 120 + 60 + 200 + 100) / 5)
    assert acme.payout_text == "75.00 USD"
    assert (other.pings, other.billable, other.caller_id_mismatch_rate) == (2, 1, 0.5)
    assert other.average_talk_seconds == pytest.approx(500)


def test_the_scorecards_page_has_every_vendor_in_a_sortable_table_and_a_chart(
    seeded, analyst_client
):
    page = analyst_client.get(
        "/admin/calls/callrecord/scorecards/", {"since": "2026-03-01", "until": "2026-03-31"}
    ).content.decode()

    assert page.index("Acme Leads") < page.index("Other Leads")
    assert (
        '<th class="num" data-key="match_rate"><button type="button">Match rate</button></th>'
        in page
    )
    assert (
        '<td class="num" data-key="transfer_rate" data-sort="0.6666666666666666">66.7%</td>' in page
    )
    assert '<svg id="scorecard-chart"' in page
    assert "<title>Acme Leads: 3 billable</title>" in page


def test_refusals_are_counted_by_reason(seeded):
    _record(seeded["acme"], DAY_1, "refused", why="refused", reason="do_not_call")
    acme = vendor_scorecards(since=MARCH[0], until=MARCH[1]).rows[0]
    assert (acme.refused, acme.refused_by_reason) == (1, {"do_not_call": 1})
