"""A staff member onboards a vendor in a real browser: from nothing to a key that pings.

Drives Debian's chromium through Playwright. Each step leaves a screenshot in test-artifacts/.
"""

import json
import urllib.request
from pathlib import Path

from tests.factories import PASSWORD
from vendors.models import Vendor, VendorKey

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "vendor-onboarding"


def snap(page, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)


def test_an_operations_user_onboards_a_vendor_whose_new_key_pings(
    live_server, make_staff, browser_page
):
    make_staff("olivia.ops", "Operations", password=PASSWORD)
    page = browser_page

    page.goto(f"{live_server.url}/admin/")
    snap(page, "01-login")
    page.fill("#id_username", "olivia.ops")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")
    assert page.url == f"{live_server.url}/admin/"
    snap(page, "02-logged-in")

    page.click("a[href='/admin/vendors/vendor/add/']")
    page.fill("#id_name", "Sunrise Leads")
    page.check("input[name=authorized_states][value=AZ]")
    page.check("input[name=authorized_states][value=TX]")
    snap(page, "03-vendor-form")
    page.click("input[name=_continue]")
    page.wait_for_selector("#create-key")
    snap(page, "04-vendor-saved")

    page.click("#create-key")
    assert page.input_value("#id_vendor") == str(Vendor.objects.get(name="Sunrise Leads").pk)
    page.fill("#id_label", "production")
    snap(page, "05-key-form")
    page.click("input[name=_submit]")
    key = page.inner_text("#vendor-key").strip()
    snap(page, "06-key-shown-once")
    # The form answered with a redirect: a reload asks for the page again, posts nothing,
    # and the key is gone from it.
    assert page.url.endswith("/reveal/")
    page.reload()
    page.wait_for_selector("#key-gone")
    assert key not in page.content()
    assert VendorKey.objects.filter(vendor__name="Sunrise Leads").count() == 1
    snap(page, "06b-reloaded-key-gone")

    request = urllib.request.Request(
        f"{live_server.url}/functions/v1/vendors-ping",
        data=json.dumps({"vendorKey": key}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        answer = json.load(response)
    assert answer["status"] == 200
    assert answer["data"]["vendorActive"] is True
    assert answer["data"]["authorizedStates"] == ["AZ", "TX"]

    stored = VendorKey.objects.get(vendor__name="Sunrise Leads")
    assert stored.prefix == key[:8] and stored.last_used_at is not None
    assert key not in str(VendorKey.objects.filter(pk=stored.pk).values().get())

    page.goto(f"{live_server.url}/admin/vendors/vendorkey/{stored.pk}/change/")
    assert key not in page.content()
    snap(page, "07-key-afterwards")
