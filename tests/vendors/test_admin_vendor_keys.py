"""Staff onboard a vendor and manage its keys from the admin; the ping endpoint follows at once."""

import re
from datetime import timedelta

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.auth.models import User
from django.utils import timezone

from tests.conftest import DEMO_KEY
from tests.factories import VENDOR_FORM_NO_INLINE_ROWS as NO_INLINE_ROWS
from vendors.admin import VendorKeyAdmin
from vendors.models import Vendor, VendorKey, VendorKeyEvent
from vendors.services import (
    VendorKeyNotRotatable,
    vendor_key_create,
    vendor_key_revoke,
    vendor_key_rotate,
)

pytestmark = pytest.mark.django_db
KEY_ON_PAGE = re.compile(r'<code id="vendor-key"[^>]*>([0-9a-f-]{36})</code>')


@pytest.fixture
def vendor(db):
    return Vendor.objects.create(name="Acme Leads", authorized_states=["AZ", "CA"])


def create_key_in_admin(client, vendor, label="production"):
    response = client.post(
        "/admin/vendors/vendorkey/add/", {"vendor": vendor.pk, "label": label}, follow=True
    )
    assert response.status_code == 200
    return response, KEY_ON_PAGE.search(response.content.decode())[1]


def test_it_creates_a_vendor_with_the_states_ticked_in_the_grid(operations_client):
    form = operations_client.get("/admin/vendors/vendor/add/").content.decode()
    assert form.count('name="authorized_states"') == 56
    response = operations_client.post(
        "/admin/vendors/vendor/add/",
        {
            "name": "Acme Leads",
            "is_active": "on",
            "authorized_states": ["TX", "AZ"],
            **NO_INLINE_ROWS,
        },
    )
    assert response.status_code == 302
    vendor = Vendor.objects.get(name="Acme Leads")
    assert vendor.authorized_states == ["AZ", "TX"]
    assert vendor.all_states is False
    entry = LogEntry.objects.get(object_id=str(vendor.pk), action_flag=ADDITION)
    assert entry.user.username == "olivia.ops"


def test_it_refuses_a_state_code_that_is_not_in_the_contract(operations_client):
    response = operations_client.post(
        "/admin/vendors/vendor/add/",
        {"name": "Acme Leads", "authorized_states": ["AZ", "ZZ"], **NO_INLINE_ROWS},
    )  # fmt: skip
    assert response.status_code == 200
    assert "Select a valid choice. ZZ is not one of the available choices." in (
        response.content.decode()
    )
    assert not Vendor.objects.exists()


def test_a_vendor_authorized_everywhere_answers_all(operations_client, ping):
    response = operations_client.post(
        "/admin/vendors/vendor/add/",
        {"name": "Everywhere", "is_active": "on", "all_states": "on", **NO_INLINE_ROWS},
    )  # fmt: skip
    assert response.status_code == 302
    _, key = create_key_in_admin(operations_client, Vendor.objects.get(name="Everywhere"))
    assert ping({"vendorKey": key}).json()["data"]["authorizedStates"] == ["All"]


def test_a_created_key_is_shown_once_pings_and_is_never_stored(operations_client, vendor, ping):
    response, key = create_key_in_admin(operations_client, vendor)
    assert "no-store" in response["Cache-Control"]

    stored = VendorKey.objects.get(vendor=vendor)
    assert stored.prefix == key[:8]
    assert stored.label == "production"
    assert stored.created_by.username == "olivia.ops"
    row = VendorKey.objects.filter(pk=stored.pk).values().get()
    assert all(key not in str(value) for value in row.values())
    assert key[8:] not in str(row)

    answer = ping({"vendorKey": key})
    assert answer.status_code == 200
    assert answer.json()["data"]["vendorActive"] is True
    assert answer.json()["data"]["authorizedStates"] == ["AZ", "CA"]
    stored.refresh_from_db()
    assert stored.last_used_at is not None

    # Afterwards only the prefix is ever shown.
    for url in (
        f"/admin/vendors/vendorkey/{stored.pk}/change/",
        "/admin/vendors/vendorkey/",
        f"/admin/vendors/vendor/{vendor.pk}/change/",
    ):
        page = operations_client.get(url).content.decode()
        assert key not in page and f"{key[:8]}…" in page, url

    event = VendorKeyEvent.objects.get(key=stored)
    assert (event.action, event.actor.username) == ("created", "olivia.ops")
    assert LogEntry.objects.filter(object_id=str(stored.pk), action_flag=ADDITION).exists()


def test_the_create_form_offers_the_vendor_it_was_opened_from(operations_client, vendor):
    vendor_page = operations_client.get(f"/admin/vendors/vendor/{vendor.pk}/change/")
    assert (
        f'href="/admin/vendors/vendorkey/add/?vendor={vendor.pk}"' in vendor_page.content.decode()
    )
    form = operations_client.get(f"/admin/vendors/vendorkey/add/?vendor={vendor.pk}")
    assert f'<option value="{vendor.pk}" selected>' in form.content.decode()


def test_it_refuses_a_key_without_a_vendor(operations_client):
    response = operations_client.post("/admin/vendors/vendorkey/add/", {"label": "x"})
    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    assert not VendorKey.objects.exists()


def test_a_key_revoked_now_answers_401_on_the_next_ping(operations_client, vendor, ping):
    _, key = create_key_in_admin(operations_client, vendor)
    assert ping({"vendorKey": key}).status_code == 200
    stored = VendorKey.objects.get(vendor=vendor)

    response = operations_client.post(
        f"/admin/vendors/vendorkey/{stored.pk}/revoke/", {"when": "now"}
    )
    assert response.status_code == 302

    answer = ping({"vendorKey": key})
    assert answer.status_code == 401
    assert (
        answer.json()["data"]["message"] == "Vendor key was not found or not formatted correctly."
    )
    stored.refresh_from_db()
    assert stored.revoked_by.username == "olivia.ops"
    assert stored.revoked_at <= timezone.now()
    assert VendorKeyEvent.objects.filter(key=stored, action="revoked").count() == 1
    assert LogEntry.objects.filter(object_id=str(stored.pk), action_flag=CHANGE).exists()


def test_a_key_revoked_for_later_works_until_then(operations_client, vendor, ping):
    _, key = create_key_in_admin(operations_client, vendor)
    stored = VendorKey.objects.get(vendor=vendor)
    at = timezone.now() + timedelta(days=2)
    response = operations_client.post(
        f"/admin/vendors/vendorkey/{stored.pk}/revoke/",
        {"when": "at", "at": at.strftime("%Y-%m-%d %H:%M")},
    )
    assert response.status_code == 302
    stored.refresh_from_db()
    assert stored.revoked_at == at.replace(second=0, microsecond=0)
    assert ping({"vendorKey": key}).status_code == 200


def test_it_refuses_a_revocation_time_that_has_passed(operations_client, vendor):
    stored, _ = vendor_key_create(vendor=vendor)
    response = operations_client.post(
        f"/admin/vendors/vendorkey/{stored.pk}/revoke/", {"when": "at", "at": "2020-01-01 00:00"}
    )
    assert response.status_code == 200
    assert "That time has passed" in response.content.decode()
    stored.refresh_from_db()
    assert stored.revoked_at is None


def test_it_refuses_to_revoke_a_key_twice(operations_client, vendor):
    stored, _ = vendor_key_create(vendor=vendor)
    operations_client.post(f"/admin/vendors/vendorkey/{stored.pk}/revoke/", {"when": "now"})
    first = VendorKey.objects.get(pk=stored.pk).revoked_at
    response = operations_client.post(
        f"/admin/vendors/vendorkey/{stored.pk}/revoke/", {"when": "now"}, follow=True
    )
    assert "is already revoked" in response.content.decode()
    assert VendorKey.objects.get(pk=stored.pk).revoked_at == first
    assert VendorKeyEvent.objects.filter(key=stored, action="revoked").count() == 1


def test_rotation_gives_a_new_key_and_keeps_the_old_one_for_the_grace_period(
    operations_client, vendor, ping
):
    old, old_key = vendor_key_create(vendor=vendor, label="production")
    response = operations_client.post(
        f"/admin/vendors/vendorkey/{old.pk}/rotate/", {"when": "24h"}, follow=True
    )
    assert response.status_code == 200
    new_key = KEY_ON_PAGE.search(response.content.decode())[1]
    assert new_key != old_key

    assert ping({"vendorKey": new_key}).status_code == 200
    assert ping({"vendorKey": old_key}).status_code == 200
    old.refresh_from_db()
    assert timedelta(hours=23, minutes=59) < old.revoked_at - timezone.now() <= timedelta(hours=24)
    new = VendorKey.objects.get(vendor=vendor, revoked_at__isnull=True)
    assert new.label == "production"
    assert set(VendorKeyEvent.objects.values_list("key__prefix", "action", "actor__username")) == {
        (old.prefix, "created", None),
        (old.prefix, "revoked", "olivia.ops"),
        (new.prefix, "created", "olivia.ops"),
        (new.prefix, "rotated", "olivia.ops"),
    }


def test_rotation_with_the_old_key_revoked_now_stops_it_at_once(operations_client, vendor, ping):
    old, old_key = vendor_key_create(vendor=vendor)
    response = operations_client.post(
        f"/admin/vendors/vendorkey/{old.pk}/rotate/", {"when": "now"}, follow=True
    )
    new_key = KEY_ON_PAGE.search(response.content.decode())[1]
    assert ping({"vendorKey": old_key}).status_code == 401
    assert ping({"vendorKey": new_key}).status_code == 200


def test_the_revoke_action_revokes_every_selected_key(operations_client, vendor, ping):
    keys = [vendor_key_create(vendor=vendor) for _ in range(2)]
    response = operations_client.post(
        "/admin/vendors/vendorkey/",
        {"action": "revoke_now", "_selected_action": [row.pk for row, _ in keys]},
    )
    assert response.status_code == 302
    for row, key in keys:
        assert ping({"vendorKey": key}).status_code == 401
        assert VendorKey.objects.get(pk=row.pk).revoked_by.username == "olivia.ops"


def test_keys_cannot_be_deleted_so_their_history_stays(vendor):
    stored, _ = vendor_key_create(vendor=vendor)
    from django.test import Client

    client = Client()
    client.force_login(User.objects.create_superuser("root", password="x" * 12))
    assert client.post(f"/admin/vendors/vendorkey/{stored.pk}/delete/").status_code == 403
    assert VendorKey.objects.filter(pk=stored.pk).exists()


def test_the_demo_key_still_pings_through_the_digest(demo, ping):
    """About seed_demo itself: the key the guide prints, and the states the contract gives it."""
    assert not VendorKey.objects.filter(digest=DEMO_KEY).exists()
    answer = ping({"vendorKey": DEMO_KEY.upper()})
    assert answer.status_code == 200
    assert answer.json()["data"]["authorizedStates"] == ["AZ", "CA"]


def test_a_scheduled_revocation_can_be_brought_forward_but_never_put_off(
    operations_client, vendor, ping
):
    stored, key = vendor_key_create(vendor=vendor)
    operations_client.post(f"/admin/vendors/vendorkey/{stored.pk}/revoke/", {"when": "1h"})
    scheduled = VendorKey.objects.get(pk=stored.pk).revoked_at

    response = operations_client.post(
        f"/admin/vendors/vendorkey/{stored.pk}/revoke/", {"when": "7d"}
    )
    assert response.status_code == 200
    assert "The key already stops working at" in response.content.decode()
    assert VendorKey.objects.get(pk=stored.pk).revoked_at == scheduled
    assert VendorKey.objects.filter(vendor=vendor).count() == 1

    operations_client.post(f"/admin/vendors/vendorkey/{stored.pk}/revoke/", {"when": "now"})
    assert ping({"vendorKey": key}).status_code == 401


@pytest.mark.parametrize("action", ["rotate", "revoke"])
@pytest.mark.parametrize("key_id", ["abc", "00000000-0000-0000-0000-000000000000"])
def test_a_key_page_for_a_malformed_or_unknown_key_is_not_found(
    operations_client, vendor, action, key_id
):
    vendor_key_create(vendor=vendor)
    assert operations_client.get(f"/admin/vendors/vendorkey/{key_id}/{action}/").status_code == 404
    response = operations_client.post(
        f"/admin/vendors/vendorkey/{key_id}/{action}/", {"when": "now"}
    )
    assert response.status_code == 404
    assert VendorKey.objects.filter(vendor=vendor, revoked_at__isnull=True).count() == 1


def test_a_key_is_rotated_once_and_a_second_rotation_is_refused(operations_client, vendor, ping):
    old, _ = vendor_key_create(vendor=vendor, label="production")
    url = f"/admin/vendors/vendorkey/{old.pk}/rotate/"
    first = operations_client.post(url, {"when": "24h"}, follow=True)
    new_key = KEY_ON_PAGE.search(first.content.decode())[1]

    again = operations_client.post(url, {"when": "24h"}, follow=True)
    page = again.content.decode()
    assert again.redirect_chain == [(f"/admin/vendors/vendorkey/{old.pk}/change/", 302)]
    assert f"Key {old.prefix}… already stops working at" in page
    assert "it is not rotated again" in page
    assert not KEY_ON_PAGE.search(page)
    assert VendorKey.objects.filter(vendor=vendor).count() == 2
    assert VendorKeyEvent.objects.filter(action="rotated").count() == 1
    assert operations_client.get(url, follow=True).redirect_chain == again.redirect_chain
    assert ping({"vendorKey": new_key}).status_code == 200


def test_a_key_revoked_for_later_is_not_rotated(operations_client, vendor):
    stored, _ = vendor_key_create(vendor=vendor)
    operations_client.post(f"/admin/vendors/vendorkey/{stored.pk}/revoke/", {"when": "1h"})

    response = operations_client.post(
        f"/admin/vendors/vendorkey/{stored.pk}/rotate/", {"when": "now"}, follow=True
    )
    assert f"Key {stored.prefix}… already stops working at" in response.content.decode()
    assert VendorKey.objects.filter(vendor=vendor).count() == 1


def test_a_rotation_that_lost_the_race_shows_a_message_not_a_second_key(
    operations_client, vendor, monkeypatch
):
    """The second of a double click read the key before the first rotation committed."""
    old, _ = vendor_key_create(vendor=vendor)
    read_by_the_second_click = VendorKey.objects.get(pk=old.pk)
    vendor_key_rotate(vendor_key=old, revoke_old_at=timezone.now() + timedelta(hours=24))
    monkeypatch.setattr(
        VendorKeyAdmin, "_key_for_change", lambda self, request, object_id: read_by_the_second_click
    )

    response = operations_client.post(
        f"/admin/vendors/vendorkey/{old.pk}/rotate/", {"when": "24h"}, follow=True
    )
    page = response.content.decode()
    assert f"Key {old.prefix}… already stops working at" in page
    assert not KEY_ON_PAGE.search(page)
    assert VendorKey.objects.filter(vendor=vendor).count() == 2


def test_the_rotation_service_re_reads_the_key_it_is_given(vendor):
    old, _ = vendor_key_create(vendor=vendor)
    stale = VendorKey.objects.get(pk=old.pk)
    vendor_key_rotate(vendor_key=old, revoke_old_at=timezone.now() + timedelta(hours=1))

    with pytest.raises(VendorKeyNotRotatable):
        vendor_key_rotate(vendor_key=stale)
    vendor_key_revoke(vendor_key=VendorKey.objects.get(pk=old.pk))
    with pytest.raises(VendorKeyNotRotatable, match="is already revoked"):
        vendor_key_rotate(vendor_key=stale)
    assert VendorKey.objects.filter(vendor=vendor).count() == 2
