"""The admin's pages as staff use them, in a real browser at 1366 px: the export form with the
admin's own widgets, and the wide tables fitting the screen. Screenshots in
test-artifacts/staff-admin/.
"""

from datetime import timedelta
from pathlib import Path

from django.utils import timezone

from tests.factories import PASSWORD, AgentFactory, CallRecordFactory, VendorFactory

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "staff-admin"
WIDTH = 1366


def snap(page, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)


def log_in(page, live_server, username):
    page.set_viewport_size({"width": WIDTH, "height": 900})
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#floor-live")


def fits_the_screen(page) -> bool:
    """Nothing wider than the window, nor a table scrolling inside its box."""
    return page.evaluate(
        """(width) => document.documentElement.scrollWidth <= width
            && [...document.querySelectorAll('.results')]
                .every(box => box.scrollWidth <= box.clientWidth)""",
        WIDTH,
    )


def test_an_analyst_picks_dates_and_vendors_with_the_admins_widgets(
    live_server, make_staff, browser_page
):
    make_staff("arthur.analyst", "Analysts")
    for name in ["Sunrise Leads", "Sunset Media", "Harbor Calls"]:
        CallRecordFactory(vendor=VendorFactory(name=name), outcome="no_agent")
    page = browser_page
    log_in(page, live_server, "arthur.analyst")

    page.goto(f"{live_server.url}/admin/calls/callrecord/export/")
    # The date picker: its calendar opens and "Today" fills the field.
    page.click("#id_since + .datetimeshortcuts a:has-text('Today')")
    assert page.input_value("#id_since") == timezone.localdate().isoformat()
    page.click("#id_until + .datetimeshortcuts a[id^=calendarlink]")
    page.wait_for_selector("#calendarbox1", state="visible")
    snap(page, "01-export-form-date-picker")
    page.keyboard.press("Escape")

    # The vendors: a list that filters by name as one types, chosen into a second list.
    page.locator("#id_vendor_input").press_sequentially("sun")
    visible = page.eval_on_selector_all(
        "#id_vendor_from option", "options => options.map(o => o.textContent)"
    )
    assert visible == ["Sunrise Leads", "Sunset Media"]
    page.dblclick("#id_vendor_from option:has-text('Sunset Media')")
    assert page.eval_on_selector_all(
        "#id_vendor_to option", "options => options.map(o => o.textContent)"
    ) == ["Sunset Media"]
    page.check("input[name=outcome][value=no_agent]")
    assert fits_the_screen(page)
    snap(page, "02-export-form-vendor-chosen")


def test_the_call_records_and_agents_fit_at_1366_px(live_server, make_staff, browser_page):
    make_staff("olivia.ops", "Operations")
    vendor = VendorFactory(name="Sunrise Leads Incorporated")
    for minutes in range(5):
        CallRecordFactory(
            vendor=vendor,
            received_at=timezone.now() - timedelta(minutes=minutes),
            tracking={"lead_id": f"SL-{minutes:06d}-a-long-lead-identifier"},
        )
    for n in [1, 2, 10]:
        # Long addresses, as a real PBX's are: they must wrap, not widen the table.
        AgentFactory(
            name=f"Demo Agent TX {n}",
            licensed_states=["TX"],
            destination=f"sip:demo-agent-tx-{n:04d}@pbx-east-1.callcenter.example.invalid",
        )
    page = browser_page
    log_in(page, live_server, "olivia.ops")

    page.goto(f"{live_server.url}/admin/calls/callrecord/")
    snap(page, "03-call-records-1366")
    assert fits_the_screen(page)

    page.goto(f"{live_server.url}/admin/routing/agent/")
    snap(page, "04-agents-coloured-1366")
    assert fits_the_screen(page)
    names = page.eval_on_selector_all(
        "#result_list th.field-name a", "links => links.map(a => a.textContent)"
    )
    assert names == ["Demo Agent TX 1", "Demo Agent TX 2", "Demo Agent TX 10"]
    snap(page, "04-agents-coloured-1366")
