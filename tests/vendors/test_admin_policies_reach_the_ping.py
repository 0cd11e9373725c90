"""What staff set in the admin is what the next ping obeys, though vendors are cached: a vendor's
consent and caps, the operator's holidays, a number listed and removed."""

import pytest
from django.utils import timezone

from tests.factories import VENDOR_FORM_NO_INLINE_ROWS, VendorFactory, floor_build, vendor_key
from vendors.models import Vendor

pytestmark = pytest.mark.django_db

CALLER = "+14805550100"


@pytest.fixture
def vendor_and_key(db):
    floor_build(agents={"AZ": 2}, numbers=4)
    vendor = VendorFactory(name="Acme Leads", authorized_states=["AZ"])
    return vendor, vendor_key(vendor)


def answer(ping, key, phone=CALLER, **fields) -> dict:
    response = ping({"vendorKey": key, "phoneNumber": phone, **fields})
    assert response.status_code == 200
    return response.json()["data"]


def save_vendor(client, vendor: Vendor, **fields):
    data = {
        "name": vendor.name,
        "is_active": "on",
        "authorized_states": vendor.authorized_states,
        **VENDOR_FORM_NO_INLINE_ROWS,
        **fields,
    }
    response = client.post(f"/admin/vendors/vendor/{vendor.pk}/change/", data)
    assert response.status_code == 302


def test_consent_and_a_cap_set_in_the_admin_refuse_the_next_ping(
    operations_client, ping, vendor_and_key
):
    vendor, key = vendor_and_key
    assert answer(ping, key, "+14805550101")["agentAvailable"] is True  # cached as it was

    save_vendor(operations_client, vendor, consent_required="on")
    assert answer(ping, key)["reason"] == "consent_missing"

    save_vendor(
        operations_client,
        vendor,
        **{"caps-TOTAL_FORMS": "1", "caps-0-state": "", "caps-0-most_at_once": "1"},
    )
    refused = answer(ping, key, xxTrustedFormCertUrl="https://cert.trustedform.com/" + "a" * 40)
    assert refused["reason"] == "concurrency_cap"  # the first ping's hold is live


def test_an_operator_holiday_closes_every_vendor(operations_client, ping, vendor_and_key):
    _, key = vendor_and_key
    assert answer(ping, key, "+14805550101")["agentAvailable"] is True
    today = timezone.localdate(timezone=timezone.get_fixed_timezone(-7 * 60))  # Phoenix

    response = operations_client.post(
        "/admin/vendors/vendor/operator-hours/",
        {
            "hours-TOTAL_FORMS": "0",
            "hours-INITIAL_FORMS": "0",
            "holidays-TOTAL_FORMS": "1",
            "holidays-INITIAL_FORMS": "0",
            "holidays-0-date": today.isoformat(),
        },
    )
    assert response.status_code == 302

    assert answer(ping, key)["reason"] == "closed"


def test_a_number_listed_in_the_admin_is_refused_until_removed(
    operations_client, ping, vendor_and_key
):
    _, key = vendor_and_key
    operations_client.post(
        "/admin/routing/donotcallnumber/add/", {"numbers": "(480) 555-0100", "reason": "asked"}
    )
    assert answer(ping, key)["reason"] == "do_not_call"

    from routing.models import DoNotCallNumber

    row = DoNotCallNumber.objects.get()
    operations_client.post(
        f"/admin/routing/donotcallnumber/{row.pk}/remove/", {"reason": "listed by mistake"}
    )
    assert answer(ping, key)["agentAvailable"] is True
