"""Staff create a sandbox key in the admin: shown as one wherever keys are listed, kept through
rotation, and answering as the sandbox at once."""

import re

import pytest

from calls.models import CallRecord
from routing.models import Reservation
from vendors.models import Vendor, VendorKey, VendorKeyEvent
from vendors.services import vendor_key_create, vendor_key_rotate

pytestmark = pytest.mark.django_db
KEY_ON_PAGE = re.compile(r'<code id="vendor-key"[^>]*>([0-9a-f-]{36})</code>')
ADD_URL = "/admin/vendors/vendorkey/add/"


@pytest.fixture
def vendor(db):
    return Vendor.objects.create(name="Acme Leads", authorized_states=["AZ", "CA"])


def test_the_add_form_offers_a_sandbox_key(operations_client, vendor):
    form = operations_client.get(ADD_URL).content.decode()

    assert 'name="sandbox"' in form
    assert "Sandbox key" in form


def test_staff_create_a_sandbox_key_that_answers_as_the_sandbox(operations_client, vendor, ping):
    response = operations_client.post(
        ADD_URL, {"vendor": vendor.pk, "label": "integration tests", "sandbox": "on"}, follow=True
    )

    page = response.content.decode()
    plain_key = KEY_ON_PAGE.search(page)[1]
    assert '<strong class="key-kind-sandbox" id="key-kind">Sandbox</strong>' in page
    key = VendorKey.objects.get()
    assert key.sandbox is True
    assert VendorKeyEvent.objects.get(key=key).detail == "sandbox key"

    validation = ping({"vendorKey": plain_key}).json()["data"]
    answer = ping({"vendorKey": plain_key, "phoneNumber": "+14805550101"}).json()["data"]

    assert validation["sandbox"] is True
    assert answer["reason"] == "no_agent"
    assert CallRecord.objects.get().sandbox is True


def test_a_key_is_live_unless_ticked(operations_client, vendor, ping):
    response = operations_client.post(
        ADD_URL, {"vendor": vendor.pk, "label": "production"}, follow=True
    )

    plain_key = KEY_ON_PAGE.search(response.content.decode())[1]
    assert VendorKey.objects.get().sandbox is False
    assert "sandbox" not in ping({"vendorKey": plain_key}).json()["data"]


def test_the_key_lists_and_pages_say_which_keys_are_sandbox(operations_client, vendor):
    sandbox, _ = vendor_key_create(vendor=vendor, label="tests", sandbox=True)
    live, _ = vendor_key_create(vendor=vendor, label="production")

    listing = operations_client.get("/admin/vendors/vendorkey/").content.decode()
    only_sandbox = operations_client.get("/admin/vendors/vendorkey/?sandbox__exact=1")
    key_page = operations_client.get(f"/admin/vendors/vendorkey/{sandbox.pk}/change/")
    live_page = operations_client.get(f"/admin/vendors/vendorkey/{live.pk}/change/")
    vendor_page = operations_client.get(f"/admin/vendors/vendor/{vendor.pk}/change/")

    assert listing.count('<strong class="key-kind-sandbox">Sandbox</strong>') == 1
    assert "Live" in listing
    assert f"{sandbox.prefix}…" in only_sandbox.content.decode()
    assert f"{live.prefix}…" not in only_sandbox.content.decode()
    assert 'id="sandbox-key-note"' in key_page.content.decode()
    assert 'id="sandbox-key-note"' not in live_page.content.decode()
    assert '<strong class="key-kind-sandbox">Sandbox</strong>' in vendor_page.content.decode()


def test_rotating_a_sandbox_key_gives_a_sandbox_key(vendor, ping):
    sandbox, _ = vendor_key_create(vendor=vendor, label="tests", sandbox=True)

    new_key, plain_key = vendor_key_rotate(vendor_key=sandbox)

    assert new_key.sandbox is True
    answer = ping({"vendorKey": plain_key, "phoneNumber": "+14805550100"}).json()["data"]
    assert answer["transferTarget"] == "+18775550100"
    assert not Reservation.objects.exists()


def test_the_sandbox_flag_cannot_be_changed_on_the_key_page(operations_client, vendor):
    sandbox, _ = vendor_key_create(vendor=vendor, label="tests", sandbox=True)

    operations_client.post(
        f"/admin/vendors/vendorkey/{sandbox.pk}/change/", {"label": "tests", "sandbox": ""}
    )

    sandbox.refresh_from_db()
    assert sandbox.sandbox is True


def test_the_demo_data_holds_demo_vendors_sandbox_key_once(demo, ping):
    """About seed_demo itself: the contract's sandbox key, for "Demo Vendor", made idempotently."""
    from io import StringIO

    from django.core.management import call_command

    call_command("seed_demo", stdout=StringIO())  # a second run changes nothing

    key = VendorKey.objects.get(sandbox=True)
    assert key.vendor.name == "Demo Vendor"
    assert key.prefix == "5a1d0c3e"
    assert VendorKey.objects.count() == 3  # the two demo keys and the sandbox key
    answer = ping({"vendorKey": "5A1D0C3E-9F2B-4C6D-8E7F-0A1B2C3D4E5F"}).json()["data"]
    assert (answer["authorizedStates"], answer["sandbox"]) == (["AZ", "CA"], True)
