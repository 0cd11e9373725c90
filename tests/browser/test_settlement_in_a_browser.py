"""An analyst reads a vendor's statement and the vendors' scorecards in a real browser.

Drives Debian's chromium through Playwright, as the onboarding test does. Each step leaves a
screenshot in test-artifacts/settlement/.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from calls.settlement.models import BillingRule
from tests.browser.test_vendor_onboarding_in_a_browser import (  # noqa: F401  (the fixture)
    PASSWORD,
    browser_page,
)
from tests.factories import CallRecordFactory, ReservationFactory, VendorFactory

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "settlement"
DAY = datetime(2026, 3, 2, 10, tzinfo=UTC)


def _calls(vendor, rule, *, billable: int, short: int, expired: int) -> None:
    for index in range(billable + short):
        at = DAY + timedelta(minutes=index)
        billed = index < billable
        CallRecordFactory(
            vendor=vendor,
            received_at=at,
            outcome="completed",
            reservation=ReservationFactory(vendor=vendor, created_at=at),
            connected_at=at,
            duration_seconds=180 if billed else 40,
            caller_id_matches=index % 3 != 0,
            billable="yes" if billed else "no",
            not_billable_reason="" if billed else "under_minimum",
            payout=rule.payout if billed else Decimal("0"),
            payout_currency="USD",
            billing_rule=rule if billed else None,
        )
    for index in range(expired):
        at = DAY + timedelta(hours=2, minutes=index)
        CallRecordFactory(
            vendor=vendor,
            received_at=at,
            outcome="expired",
            reservation=ReservationFactory(vendor=vendor, created_at=at),
            billable="no",
            not_billable_reason="no_call",
            payout=Decimal("0"),
        )


@pytest.fixture
def vendors(transactional_db):
    acme = VendorFactory(name="Acme Leads")
    beta = VendorFactory(name="Beta Media")
    since = datetime(2026, 1, 1, tzinfo=UTC)
    acme_rule = BillingRule.objects.create(vendor=acme, effective_from=since, payout=Decimal("25"))
    beta_rule = BillingRule.objects.create(vendor=beta, effective_from=since, payout=Decimal("40"))
    _calls(acme, acme_rule, billable=6, short=2, expired=4)
    _calls(beta, beta_rule, billable=2, short=3, expired=1)
    return acme, beta


def snap(page, name: str) -> None:
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)


def test_an_analyst_reads_a_statement_and_sorts_the_scorecards(
    live_server,
    make_staff,
    browser_page,  # noqa: F811
    vendors,
):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    make_staff("ana.analyst", "Analysts", password=PASSWORD)
    page = browser_page

    page.goto(f"{live_server.url}/admin/calls/callrecord/")
    page.fill("#id_username", "ana.analyst")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("text=Statements")
    page.click("text=Statements")
    page.select_option("#id_vendor", label="Acme Leads")
    page.select_option("#id_period", "month")
    page.fill("#id_day", "2026-03-15")
    page.click("input[type=submit][value=Show]")
    page.wait_for_selector("#statement-title")
    assert page.inner_text("#statement-billable") == "6"
    assert page.inner_text("#statement-payout") == "150.00 USD"
    assert "2026-03-02" in page.inner_text("table.statement")
    snap(page, "01-statement")

    page.goto(f"{live_server.url}/admin/calls/callrecord/")
    page.click("text=Scorecards")
    page.fill("#id_since", "2026-03-01")
    page.fill("#id_until", "2026-03-31")
    page.click("input[type=submit][value=Show]")
    page.wait_for_selector("#scorecard-chart")
    vendors_in_order = page.locator("#scorecards tbody tr td:first-child").all_inner_texts()
    assert vendors_in_order == ["Acme Leads", "Beta Media"]  # most pings first
    snap(page, "02-scorecards")

    page.click("#scorecards th[data-key=match_rate] button")  # highest first
    page.click("#scorecards th[data-key=payout] button")
    page.click("#scorecards th[data-key=payout] button")  # now ascending
    vendors_in_order = page.locator("#scorecards tbody tr td:first-child").all_inner_texts()
    assert vendors_in_order == ["Beta Media", "Acme Leads"]
    assert page.get_attribute("#scorecards th[data-key=payout]", "aria-sort") == "ascending"
    snap(page, "03-scorecards-sorted")


def test_an_operations_user_releases_a_reservation_giving_the_reason(
    live_server,
    make_staff,
    browser_page,  # noqa: F811
    transactional_db,
):
    from django.utils import timezone

    from calls.models import CallRecord

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    vendor = VendorFactory(name="Acme Leads", authorized_states=["AZ"])
    now = timezone.now()
    reservation = ReservationFactory(
        vendor=vendor, phone_number="+14805550100", ttl_seconds=600, created_at=now
    )
    record = CallRecordFactory(vendor=vendor, outcome="reserved", reservation=reservation,
                               phone_number="+14805550100", received_at=now)  # fmt: skip
    make_staff("olivia.ops", "Operations", password=PASSWORD)
    page = browser_page

    page.goto(f"{live_server.url}/admin/routing/reservation/{reservation.pk}/change/")
    page.fill("#id_username", "olivia.ops")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("a.release-link")
    assert page.locator("input[name=_save]").count() == 0  # nothing here to save
    snap(page, "04-reservation")
    page.click("a.release-link")
    release_url = page.url
    page.click("input[type=submit][value='Release now']")  # no reason yet: the browser stops it
    assert page.url == release_url
    assert page.eval_on_selector("#id_reason", "field => field.validity.valueMissing")
    snap(page, "05-release-asks-for-a-reason")
    page.fill("#id_reason", "Vendor cancelled the transfer")
    page.click("input[type=submit][value='Release now']")
    page.wait_for_selector("text=Released the reservation.")
    assert "Vendor cancelled the transfer" in page.inner_text("#content")
    assert page.locator("a.release-link").count() == 0
    snap(page, "06-released")

    reservation.refresh_from_db()
    assert (reservation.status, reservation.released_by.username) == ("released", "olivia.ops")
    record = CallRecord.objects.get(pk=record.pk)
    assert (record.outcome, record.billable, record.not_billable_reason) == (
        "released",
        "no",
        "no_call",
    )
