"""Staff make a sandbox key in a real browser, the vendor tests with it, and its pings stay out of
the call-record list until asked for. Each step leaves a screenshot in test-artifacts/."""

import json
import urllib.request
from pathlib import Path

from tests.browser.test_vendor_onboarding_in_a_browser import PASSWORD
from vendors.models import Vendor, VendorKey

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "sandbox-key"


def snap(page, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)


def ping(live_server, body: dict) -> dict:
    request = urllib.request.Request(
        f"{live_server.url}/functions/v1/vendors-ping",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)["data"]


def test_staff_make_a_sandbox_key_whose_pings_stay_apart(live_server, browser_page):
    from tests.factories import SuperuserFactory

    SuperuserFactory(username="root", password=PASSWORD)
    vendor = Vendor.objects.create(name="Sunrise Leads", authorized_states=["AZ"])
    page = browser_page
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "root")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")

    page.goto(f"{live_server.url}/admin/vendors/vendorkey/add/?vendor={vendor.pk}")
    page.fill("#id_label", "integration tests")
    page.check("#id_sandbox")
    snap(page, "01-sandbox-key-form")
    page.click("input[name=_submit]")
    key = page.inner_text("#vendor-key").strip()
    assert page.inner_text("#key-kind").strip() == "Sandbox"
    snap(page, "02-sandbox-key-shown-once")
    assert VendorKey.objects.get(vendor=vendor).sandbox is True

    assert ping(live_server, {"vendorKey": key})["sandbox"] is True
    answer = ping(live_server, {"vendorKey": key, "phoneNumber": "+14805550105"})
    assert (answer["reason"], answer["retryAfterSeconds"]) == ("closed", 28800)

    page.goto(f"{live_server.url}/admin/vendors/vendor/{vendor.pk}/change/")
    assert page.inner_text(".key-kind-sandbox") == "Sandbox"
    snap(page, "03-vendor-page-marks-the-sandbox-key")

    page.goto(f"{live_server.url}/admin/calls/callrecord/")
    assert answer["requestId"] not in page.content()
    snap(page, "04-call-records-live-only")
    page.click("text=Sandbox traffic only")
    assert answer["requestId"] in page.content()
    snap(page, "05-call-records-sandbox-only")
