"""Two rotations of one key at once (a double click on "Rotate key"): one new key, never two.

PostgreSQL only: SQLite ignores row locks. Each thread uses its own database connection, as two
web workers would.
"""

import threading
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from tests.conftest import second_waits_on_first
from vendors.models import Vendor, VendorKey, VendorKeyEvent
from vendors.services import VendorKeyNotRotatable, vendor_key_create, vendor_key_rotate

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_the_second_of_two_rotations_at_once_waits_for_the_first_and_is_refused():
    vendor = Vendor.objects.create(name="Acme Leads", authorized_states=["AZ"])
    old, _ = vendor_key_create(vendor=vendor)
    later = timezone.now() + timedelta(hours=24)
    first_rotated = threading.Event()
    first_may_commit = threading.Event()
    outcome: dict[str, object] = {}

    def first_click():
        with transaction.atomic():  # its lock is held until the test lets it commit
            vendor_key_rotate(vendor_key=VendorKey.objects.get(pk=old.pk), revoke_old_at=later)
            first_rotated.set()
            first_may_commit.wait(10)

    def second_click():
        seen = VendorKey.objects.get(pk=old.pk)
        outcome["usable when read"] = seen.revoked_at is None
        first_rotated.wait(10)
        try:
            vendor_key_rotate(vendor_key=seen, revoke_old_at=later)
            outcome["second"] = "rotated"
        except VendorKeyNotRotatable as refusal:
            outcome["second"] = refusal.message

    waited = second_waits_on_first(
        first_click, second_click, first_ready=first_rotated, first_may_finish=first_may_commit
    )

    assert waited  # the second ran while the first's transaction was open, not merely after it
    assert outcome["usable when read"] is True
    assert f"Key {old.prefix}… already stops working at" in outcome["second"]
    assert VendorKey.objects.filter(vendor=vendor).count() == 2
    assert VendorKeyEvent.objects.filter(action="rotated").count() == 1
