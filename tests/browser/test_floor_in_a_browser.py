"""Staff watch the operations floor in a real browser: it changes after a ping without a reload,
its charts are drawn, and each role lands on its own home.

Drives Debian's chromium through Playwright, at 1366 px wide (a common office laptop). Each step
leaves a screenshot in test-artifacts/floor/.
"""

import json
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from tests.factories import (
    PASSWORD,
    AgentFactory,
    CallRecordFactory,
    TransferNumberFactory,
    VendorFactory,
)

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "floor"
KEY = "0b6e2a51-7c4d-4f8e-9a1b-2c3d4e5f6a7b"


@pytest.fixture(autouse=True)
def _quick_refresh(settings):
    settings.FLOOR_REFRESH_SECONDS = 1


def snap(page, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)


def log_in(page, live_server, username):
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(f"{live_server.url}/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#floor-live")


def tile(page, name) -> str:
    return page.inner_text(f"#tile-{name} .floor-number").strip()


def ping(live_server, body) -> dict:
    request = urllib.request.Request(
        f"{live_server.url}/functions/v1/vendors-ping",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def history_of_pings(vendor):
    now = timezone.now()
    for hours, outcome in [(1, "completed"), (2, "expired"), (3, "no_agent"), (30, "completed")]:
        CallRecordFactory(vendor=vendor, received_at=now - timedelta(hours=hours), outcome=outcome)


def test_the_floor_changes_after_a_ping_without_a_reload(live_server, make_staff, browser_page):
    make_staff("olivia.ops", "Operations")
    vendor = VendorFactory.with_key(key=KEY, name="Sunrise Leads", authorized_states=["AZ"])[0]
    AgentFactory.create_batch(2, licensed_states=["AZ"])
    TransferNumberFactory.create_batch(2)
    history_of_pings(vendor)
    page = browser_page

    log_in(page, live_server, "olivia.ops")
    assert page.inner_text("h1") == "Operations floor"
    assert (tile(page, "agents-free"), tile(page, "live-holds")) == ("2", "0")
    # A mark on this page: a reload or a navigation would lose it.
    page.evaluate("window.sameDocument = true")
    snap(page, "01-operations-home-before-the-ping")

    answer = ping(live_server, {"vendorKey": KEY, "phoneNumber": "+14805550100"})
    assert answer["data"]["agentAvailable"] is True

    page.wait_for_function(
        "document.querySelector('#tile-live-holds .floor-number').innerText.trim() === '1'"
    )
    assert (tile(page, "agents-free"), tile(page, "agents-reserved")) == ("1", "1")
    assert page.evaluate("window.sameDocument") is True
    assert "Sunrise Leads" in page.inner_text("#floor-holds")
    assert page.inner_text("#recent-reserved td.num") == "1"
    snap(page, "02-operations-home-after-the-ping")


def test_the_charts_are_drawn_for_all_vendors_and_for_one(live_server, make_staff, browser_page):
    make_staff("olivia.ops", "Operations")
    vendor = VendorFactory(name="Sunrise Leads")
    history_of_pings(vendor)
    VendorFactory(name="Quiet Vendor")
    page = browser_page

    log_in(page, live_server, "olivia.ops")
    drawn = """(id) => {
        const chart = window.Chart && window.Chart.getChart(document.getElementById(id));
        if (!chart) { return null; }
        return chart.data.datasets.map(d => d.data.reduce((a, b) => a + (b || 0), 0));
    }"""
    page.wait_for_function(f"({drawn})('chart-pings-per-hour') !== null")
    page.wait_for_function(f"({drawn})('chart-transfer-rate') !== null")
    hourly = page.evaluate(drawn, "chart-pings-per-hour")
    assert sum(hourly) == 3  # the ping 30 hours ago is out of the 24-hour chart
    assert page.evaluate(drawn, "chart-transfer-rate") != [0]
    box = page.locator("#chart-pings-per-hour").bounding_box()
    assert box and box["width"] > 300 and box["height"] > 100
    page.locator("#floor-charts").scroll_into_view_if_needed()
    snap(page, "03-charts-all-vendors")

    page.select_option("#chart-vendor", label="Quiet Vendor")
    page.wait_for_function(f"({drawn})('chart-pings-per-hour').every(n => n === 0)")
    snap(page, "04-charts-one-vendor")


def test_an_analyst_lands_on_a_read_only_floor(live_server, make_staff, browser_page):
    make_staff("arthur.analyst", "Analysts")
    AgentFactory(licensed_states=["TX"], status="offline")
    page = browser_page

    log_in(page, live_server, "arthur.analyst")

    assert page.inner_text("h1") == "Operations floor"
    assert tile(page, "agents-offline") == "1"
    assert page.locator("text=Release a hold").count() == 0
    assert page.locator("a[href='/admin/calls/callrecord/']").count() >= 1
    snap(page, "05-analyst-home")
