"""Vendor keys: how a ping's key becomes a vendor, and how staff issue and revoke keys."""

import re
import uuid
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from config.errors import ApplicationError
from vendors.models import (
    KEY_PREFIX_LENGTH,
    Vendor,
    VendorKey,
    VendorKeyEvent,
    vendor_key_digest,
)

MESSAGE_BAD_KEY = "Vendor key was not found or not formatted correctly."
# Writing last_used_at on every ping would cost a write per request; once a minute is plenty.
LAST_USED_RESOLUTION = timedelta(seconds=60)

_CANONICAL_UUID = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.ASCII | re.IGNORECASE
)


class VendorKeyInvalid(ApplicationError):
    status = 401
    message = MESSAGE_BAD_KEY


def vendor_key_authenticate(*, key: object, now=None) -> Vendor:
    """The vendor a usable key belongs to; anything else raises VendorKeyInvalid (401)."""
    if not isinstance(key, str) or not _CANONICAL_UUID.fullmatch(key):
        raise VendorKeyInvalid()
    now = now or timezone.now()
    vendor_key = (
        VendorKey.objects.select_related("vendor").filter(digest=vendor_key_digest(key)).first()
    )
    if vendor_key is None or not vendor_key.is_usable(now):
        raise VendorKeyInvalid()
    if vendor_key.last_used_at is None or now - vendor_key.last_used_at > LAST_USED_RESOLUTION:
        VendorKey.objects.filter(pk=vendor_key.pk).update(last_used_at=now)
    return vendor_key.vendor


@transaction.atomic
def vendor_key_create(
    *, vendor: Vendor, label: str = "", actor=None, key: str | None = None
) -> tuple[VendorKey, str]:
    """A new key for the vendor. Returns the row and the key itself, which is never stored.

    `key` is for the demo data only, whose key the integration guide prints.
    """
    plain = (key or str(uuid.uuid4())).lower()
    vendor_key = VendorKey.objects.create(
        vendor=vendor,
        label=label,
        prefix=plain[:KEY_PREFIX_LENGTH],
        digest=vendor_key_digest(plain),
        created_by=actor,
    )
    VendorKeyEvent.objects.create(key=vendor_key, action=VendorKeyEvent.Action.CREATED, actor=actor)
    return vendor_key, plain


@transaction.atomic
def vendor_key_revoke(*, vendor_key: VendorKey, actor=None, at=None) -> VendorKey:
    """Revoke now, or at a chosen moment (for rotation without downtime)."""
    vendor_key.revoked_at = at or timezone.now()
    vendor_key.revoked_by = actor
    vendor_key.save(update_fields=["revoked_at", "revoked_by"])
    VendorKeyEvent.objects.create(
        key=vendor_key,
        action=VendorKeyEvent.Action.REVOKED,
        actor=actor,
        detail=f"effective {vendor_key.revoked_at.isoformat()}",
    )
    return vendor_key


@transaction.atomic
def vendor_key_rotate(
    *, vendor_key: VendorKey, actor=None, revoke_old_at=None
) -> tuple[VendorKey, str]:
    """A new key for the same vendor; the old one is revoked now or at `revoke_old_at`."""
    new_key, plain = vendor_key_create(
        vendor=vendor_key.vendor, label=vendor_key.label, actor=actor
    )
    vendor_key_revoke(vendor_key=vendor_key, actor=actor, at=revoke_old_at)
    VendorKeyEvent.objects.create(
        key=new_key,
        action=VendorKeyEvent.Action.ROTATED,
        actor=actor,
        detail=f"replaces {vendor_key.prefix}",
    )
    return new_key, plain
