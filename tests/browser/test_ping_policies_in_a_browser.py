"""Operations staff set a vendor's ping policies and keep the do-not-call list, in a real
browser: caps, hours and a holiday, consent, a duplicate window; a CSV file with a bad line
refused (the line named), the fixed file taken, a number found and removed with a reason.

Drives Debian's chromium through Playwright. Each step leaves a screenshot in test-artifacts/.
"""

from datetime import date, time
from pathlib import Path

from routing.models import DoNotCallChange, DoNotCallNumber
from tests.factories import PASSWORD, VendorFactory
from vendors.models import Holiday, OpeningHours, VendorCap

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "ping-policies"


def snap(page, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)


def log_in(page, live_server, username):
    page.goto(f"{live_server.url}/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")


def add_row(page, group: str) -> int:
    """Click the table's "Add another" and return the new row's index."""
    before = page.locator(f"#{group}-group tr.form-row:not(.empty-form)").count()
    page.click(f"#{group}-group .add-row a")
    return before


def test_operations_staff_set_a_vendors_policies(live_server, make_staff, browser_page):
    make_staff("olivia.ops", "Operations", password=PASSWORD)
    vendor = VendorFactory(name="Sunrise Leads", authorized_states=["AZ", "TX"])
    page = browser_page
    log_in(page, live_server, "olivia.ops")

    page.goto(f"{live_server.url}/admin/vendors/vendor/{vendor.pk}/change/")
    page.check("#id_consent_required")
    page.fill("#id_duplicate_window_days", "30")
    page.check("input[name=duplicate_scope][value=all_vendors]")
    row = add_row(page, "caps")
    page.select_option(f"#id_caps-{row}-state", "")
    page.fill(f"#id_caps-{row}-most_at_once", "3")
    page.fill(f"#id_caps-{row}-most_per_hour", "20")
    row = add_row(page, "caps")
    page.select_option(f"#id_caps-{row}-state", "TX")
    page.fill(f"#id_caps-{row}-most_per_day", "50")
    row = add_row(page, "opening_hours")
    page.select_option(f"#id_opening_hours-{row}-weekday", "0")
    page.fill(f"#id_opening_hours-{row}-opens", "17:00")
    page.fill(f"#id_opening_hours-{row}-closes", "09:00")  # a slip: closes before it opens
    row = add_row(page, "holidays")
    page.fill(f"#id_holidays-{row}-date", "2026-12-25")
    page.fill(f"#id_holidays-{row}-name", "Christmas")
    snap(page, "01-vendor-policies-filled")
    page.click("input[name=_continue]")

    error = page.locator("#opening_hours-group .errorlist").first
    assert "Closes at 09:00, not after it opens at 17:00." in error.inner_text()
    assert not VendorCap.objects.exists()
    snap(page, "02-closing-before-opening-refused")

    page.fill("#id_opening_hours-0-opens", "09:00")
    page.fill("#id_opening_hours-0-closes", "17:00")
    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist .success")
    snap(page, "03-vendor-policies-saved")

    vendor.refresh_from_db()
    assert vendor.consent_required is True
    assert (vendor.duplicate_window_days, vendor.duplicate_scope) == (30, "all_vendors")
    assert sorted(
        VendorCap.objects.filter(vendor=vendor).values_list(
            "state", "most_at_once", "most_per_hour", "most_per_day"
        )
    ) == [("", 3, 20, None), ("TX", None, None, 50)]
    assert list(
        OpeningHours.objects.filter(vendor=vendor).values_list("weekday", "opens", "closes")
    ) == [(0, time(9), time(17))]
    assert list(Holiday.objects.filter(vendor=vendor).values_list("date", "name")) == [
        (date(2026, 12, 25), "Christmas")
    ]

    # The operator's default hours, on their own page.
    page.goto(f"{live_server.url}/admin/vendors/vendor/")
    page.click("#operator-hours")
    page.select_option("#id_hours-0-weekday", "1")
    page.fill("#id_hours-0-opens", "08:00")
    page.fill("#id_hours-0-closes", "20:00")
    page.fill("#id_holidays-0-date", "2026-11-26")
    page.fill("#id_holidays-0-name", "Thanksgiving")
    snap(page, "04-operator-hours-filled")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    snap(page, "05-operator-hours-saved")
    assert list(
        OpeningHours.objects.filter(vendor__isnull=True).values_list("weekday", "opens", "closes")
    ) == [(1, time(8), time(20))]
    assert Holiday.objects.filter(vendor__isnull=True, name="Thanksgiving").exists()

    page.select_option("#id_year", "2027")
    page.click("input[name=_add_federal]")
    message = page.locator(".messagelist .success").inner_text()
    assert "Added 15 US federal holiday(s) of 2027." in message
    assert Holiday.objects.filter(vendor__isnull=True, date=date(2027, 11, 25)).exists()
    snap(page, "05b-operator-federal-holidays-added")


def test_operations_staff_keep_the_do_not_call_list(live_server, make_staff, browser_page):
    make_staff("olivia.ops", "Operations", password=PASSWORD)
    page = browser_page
    log_in(page, live_server, "olivia.ops")
    bad = "number,source,reason\n(480) 555-0100,web form,asked to stop\n480-555,web form,typo\n"

    page.goto(f"{live_server.url}/admin/routing/donotcallnumber/")
    page.click("#dnc-upload")
    page.set_input_files(
        "#id_file", files=[{"name": "opt-outs.csv", "mimeType": "text/csv", "buffer": bad.encode()}]
    )
    page.fill("#id_source", "consumer requests")
    page.click("input[name=_submit]")

    assert "Nothing was added from opt-outs.csv:" in page.locator(".errornote").inner_text()
    assert "Line 3: “480-555” is not a US phone number" in page.locator(".errorlist").inner_text()
    assert not DoNotCallNumber.objects.exists()
    snap(page, "06-dnc-upload-bad-line-named")

    good = bad.replace("480-555,", "602-555-0101,") + "6025550102,,\n"
    page.set_input_files(
        "#id_file",
        files=[{"name": "opt-outs.csv", "mimeType": "text/csv", "buffer": good.encode()}],
    )
    page.click("input[name=_submit]")
    message = page.locator(".messagelist .success").inner_text()
    assert "Added 3 number(s) to the do-not-call list." in message
    snap(page, "07-dnc-upload-taken")

    page.fill("#searchbar", "602.555.0101")
    page.press("#searchbar", "Enter")
    page.wait_for_selector("#result_list")
    assert page.locator("#result_list tbody tr").count() == 1
    snap(page, "08-dnc-search")

    page.click("#result_list tbody tr th a")
    page.click("#dnc-remove")
    page.fill("#id_reason", "listed by mistake")
    snap(page, "09-dnc-remove-reason")
    page.click("input[name=_submit]")
    message = page.locator(".messagelist .success").inner_text()
    assert "Removed 1 number(s) from the do-not-call list: +16025550101." in message
    snap(page, "10-dnc-removed")

    assert sorted(DoNotCallNumber.objects.values_list("number", flat=True)) == [
        "+14805550100",
        "+16025550102",
    ]
    removal = DoNotCallChange.objects.get(action="removed")
    assert (removal.number, removal.reason, removal.actor.username) == (
        "+16025550101",
        "listed by mistake",
        "olivia.ops",
    )

    page.goto(f"{live_server.url}/admin/routing/donotcallnumber/")
    page.click("#dnc-history")
    page.wait_for_selector("#result_list")
    assert "listed by mistake" in page.locator("#result_list").inner_text()
    snap(page, "11-dnc-history")
