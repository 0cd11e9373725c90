"""A new key is shown once, on a page reached by a redirect: reloading it shows the key no more
and makes nothing. A label names one active key of a vendor."""

import re
import threading
import time
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.contrib.sessions.models import Session
from django.db import IntegrityError, connection, transaction
from django.test import Client
from django.utils import timezone

from vendors.models import Vendor, VendorKey
from vendors.services import VendorKeyLabelTaken, vendor_key_create, vendor_key_revoke

pytestmark = pytest.mark.django_db
KEY_ON_PAGE = re.compile(r'<code id="vendor-key"[^>]*>([0-9a-f-]{36})</code>')
ADD_URL = "/admin/vendors/vendorkey/add/"
GONE = "This key was shown once and is not shown again"


@pytest.fixture
def vendor(db):
    return Vendor.objects.create(name="Acme Leads", authorized_states=["AZ"])


def test_reloading_the_page_that_shows_a_new_key_makes_no_second_key(operations_client, vendor):
    created = operations_client.post(ADD_URL, {"vendor": vendor.pk, "label": "production"})

    stored = VendorKey.objects.get(vendor=vendor)
    reveal_url = f"/admin/vendors/vendorkey/{stored.pk}/reveal/"
    assert (created.status_code, created["Location"]) == (303, reveal_url)
    shown = operations_client.get(reveal_url)
    key = KEY_ON_PAGE.search(shown.content.decode())[1]
    assert stored.prefix == key[:8]
    assert "no-store" in shown["Cache-Control"]

    reloaded = operations_client.get(reveal_url)

    assert reloaded.status_code == 200
    page = reloaded.content.decode()
    assert GONE in page and key not in page and f"{stored.prefix}…" in page
    assert VendorKey.objects.filter(vendor=vendor).count() == 1
    # Never kept on the server: not in the key's row, nor in any session.
    assert key not in str(VendorKey.objects.filter(pk=stored.pk).values().get())
    assert all(key not in str(session.get_decoded()) for session in Session.objects.all())


def test_posting_the_form_again_is_refused_with_a_message(operations_client, vendor):
    operations_client.post(ADD_URL, {"vendor": vendor.pk, "label": "production"})

    again = operations_client.post(ADD_URL, {"vendor": vendor.pk, "label": "production"})

    assert again.status_code == 200
    first = VendorKey.objects.get(vendor=vendor)
    assert (
        f"Acme Leads already has an active key labelled “production” ({first.prefix}…)"
        in again.content.decode()
    )
    assert not KEY_ON_PAGE.search(again.content.decode())
    assert VendorKey.objects.filter(vendor=vendor).count() == 1


def test_a_label_is_free_again_once_its_key_is_revoked(operations_client, vendor):
    old, _ = vendor_key_create(vendor=vendor, label="production")
    vendor_key_revoke(vendor_key=old, at=timezone.now() + timedelta(hours=1))

    created = operations_client.post(ADD_URL, {"vendor": vendor.pk, "label": "production"})

    assert created.status_code == 303
    assert VendorKey.objects.filter(vendor=vendor, label="production").count() == 2


def test_the_same_label_is_fine_for_another_vendor_and_keys_without_a_label_are_many(vendor):
    other = Vendor.objects.create(name="Beta Media", all_states=True)
    vendor_key_create(vendor=vendor, label="production")
    vendor_key_create(vendor=other, label="production")
    vendor_key_create(vendor=vendor)
    vendor_key_create(vendor=vendor)
    with pytest.raises(VendorKeyLabelTaken):
        vendor_key_create(vendor=vendor, label="production")
    assert VendorKey.objects.count() == 4


def test_the_database_refuses_a_second_unrevoked_key_with_a_label(vendor):
    vendor_key_create(vendor=vendor, label="production")
    with pytest.raises(IntegrityError), transaction.atomic():
        VendorKey.objects.create(vendor=vendor, label="production", prefix="x", digest="d" * 64)


def test_a_rotated_key_is_shown_once_too(operations_client, vendor):
    old, _ = vendor_key_create(vendor=vendor, label="production")

    rotated = operations_client.post(f"/admin/vendors/vendorkey/{old.pk}/rotate/", {"when": "24h"})

    new = VendorKey.objects.get(vendor=vendor, revoked_at__isnull=True)
    assert rotated.status_code == 303
    shown = operations_client.get(rotated["Location"]).content.decode()
    assert KEY_ON_PAGE.search(shown) and f"{old.prefix}…, revoked from" in shown
    assert new.label == "production"
    again = operations_client.get(rotated["Location"]).content.decode()
    assert GONE in again and not KEY_ON_PAGE.search(again)
    assert VendorKey.objects.filter(vendor=vendor).count() == 2


def test_another_login_in_the_same_browser_is_not_shown_the_key(operations_client, vendor):
    created = operations_client.post(ADD_URL, {"vendor": vendor.pk, "label": "production"})
    other = User.objects.create_user("oscar.ops", password="x" * 16)
    other.groups.add(Group.objects.get(name="Operations"))
    browser = Client()
    browser.cookies = operations_client.cookies  # the reveal cookie, another user's session
    browser.force_login(other)

    page = browser.get(created["Location"]).content.decode()

    assert GONE in page and not KEY_ON_PAGE.search(page)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_key_made_meanwhile_under_the_same_label_is_refused_by_the_database(vendor):
    """The other request's key is not committed yet when this one checks the label: the
    constraint makes this insert wait, then refuse, and the refusal is the same message."""
    created = threading.Event()

    def other_request():
        try:
            with transaction.atomic():
                vendor_key_create(vendor=vendor, label="production")
                created.set()
                # Still uncommitted while the main thread checks and inserts; well inside the
                # lock timeout (DATABASE_LOCK_TIMEOUT_MS, 1 s) its insert waits for this commit.
                time.sleep(0.4)
        finally:
            connection.close()

    thread = threading.Thread(target=other_request)
    thread.start()
    assert created.wait(timeout=10)

    with pytest.raises(VendorKeyLabelTaken, match="already has an active key labelled"):
        vendor_key_create(vendor=vendor, label="production")

    thread.join(timeout=10)
    assert VendorKey.objects.filter(vendor=vendor).count() == 1
