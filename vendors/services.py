"""Vendor keys: how a ping's key becomes a vendor, and how staff issue and revoke keys."""

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from config.errors import ApplicationError
from config.sharedcache import (
    shared_cache_batch,
    shared_cache_delete_many,
    shared_cache_get,
    shared_cache_set,
)
from vendors.models import (
    KEY_PREFIX_LENGTH,
    Vendor,
    VendorKey,
    VendorKeyEvent,
    vendor_key_digest,
)
from vendors.policies import VendorPolicies, vendor_policies_load
from vendors.ratelimit import (
    COUNTER_SECONDS,
    ratelimit_check_client,
    ratelimit_check_key,
    ratelimit_counters,
    ratelimit_record_key_failure,
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


class VendorKeyRevoked(VendorKeyInvalid):
    """A key that exists but no longer works: the same 401, but not a guess (a vendor mid-rotation
    may still send it), so the key-guessing limit does not count it."""


@dataclass(frozen=True)
class AdmittedKey:
    """A usable key: whose it is, and whether it is a sandbox key (calls.ping.sandbox answers
    its pings without holding anything)."""

    vendor: Vendor
    sandbox: bool = False


def vendor_key_authenticate(*, key: object, now=None) -> Vendor:
    """The vendor a usable key belongs to; anything else raises VendorKeyInvalid (401)."""
    if not isinstance(key, str) or not _CANONICAL_UUID.fullmatch(key):
        raise VendorKeyInvalid()
    return _admitted_for_digest(vendor_key_digest(key), now or timezone.now()).vendor


def vendor_key_admit(*, key: object, client: str | None, now=None) -> AdmittedKey:
    """`vendor_key_authenticate` behind the rate limits (429, RateLimited): a key over its
    vendor's limit, and a client that sent too many keys that do not exist this minute, guessing.

    The guessing limit refuses only keys that do not exist: a valid key is admitted whatever its
    client's failures (a vendor shares an address with whoever guesses), and a revoked one
    answers 401 and counts for nothing (a vendor mid-rotation). So it is decided after the key
    is looked up, and a failure is counted only once the lookup says the key never existed: never
    for good pings in flight together at a cache miss. The cached key and both rate counters come
    from the shared cache in one round trip.
    """
    well_formed = isinstance(key, str) and _CANONICAL_UUID.fullmatch(key)
    digest = vendor_key_digest(key) if isinstance(key, str) and well_formed else None
    read, increment = ratelimit_counters(client=client, key_digest=digest)
    batch = shared_cache_batch(
        get=[_cache_key(digest)] if digest else [],
        read=read,
        increment=increment,
        timeout=COUNTER_SECONDS,
    )
    cached, failures, uses = None, None, None
    if batch is not None:
        values, counters = batch
        cached = values[0] if values else None
        failures = counters[0] if read else None
        uses = counters[-1] if increment else None
    try:
        if digest is None:
            raise VendorKeyInvalid()
        admitted = _admitted_for_digest(digest, now or timezone.now(), cached=cached)
    except VendorKeyRevoked:
        raise
    except VendorKeyInvalid:
        ratelimit_check_client(failures=failures)
        ratelimit_record_key_failure(client=client)
        raise
    # A sandbox key is limited as a live one: a vendor's tests meet the limits production will.
    ratelimit_check_key(count=uses, limit_per_minute=admitted.vendor.rate_limit_per_minute)
    return admitted


@dataclass(frozen=True)
class _CachedKey:
    """What a ping needs of a key and its vendor, kept in the shared cache."""

    key_id: str
    revoked_at: datetime | None
    vendor: dict
    # Loaded with the vendor so hours and consent cost a ping nothing; staff edits clear it.
    policies: VendorPolicies
    sandbox: bool = False

    def is_usable(self, now: datetime) -> bool:
        return self.revoked_at is None or self.revoked_at > now


_VENDOR_FIELDS = (
    "id",
    "name",
    "is_active",
    "all_states",
    "authorized_states",
    "rate_limit_per_minute",
    "consent_required",
    "duplicate_window_days",
    "duplicate_scope",
)


def _cache_key(digest: str) -> str:
    # v3: the entry carries the vendor's policies and the key's sandbox flag (an older
    # process's entries lack them).
    return f"vendor-key:v3:{digest}"


_UNREAD = object()


def _admitted_for_digest(digest: str, now: datetime, *, cached=_UNREAD) -> AdmittedKey:
    cache_key = _cache_key(digest)
    if cached is _UNREAD:
        cached = shared_cache_get(cache_key)
    if not isinstance(cached, _CachedKey):
        vendor_key = VendorKey.objects.select_related("vendor").filter(digest=digest).first()
        if vendor_key is None:
            raise VendorKeyInvalid()
        vendor = vendor_key.vendor
        cached = _CachedKey(
            key_id=str(vendor_key.pk),
            revoked_at=vendor_key.revoked_at,
            vendor={field: getattr(vendor, field) for field in _VENDOR_FIELDS},
            policies=vendor_policies_load(vendor),
            sandbox=vendor_key.sandbox,
        )
        shared_cache_set(cache_key, cached, settings.VENDOR_KEY_CACHE_SECONDS)
        _last_used_written[cached.key_id] = vendor_key.last_used_at
    if not cached.is_usable(now):
        raise VendorKeyRevoked()
    _touch_last_used(cached.key_id, now)
    vendor = Vendor.from_db("default", list(cached.vendor), list(cached.vendor.values()))
    vendor.policies = cached.policies
    return AdmittedKey(vendor=vendor, sandbox=cached.sandbox)


# When this process last wrote each key's last_used_at: a write per ping would cost more than
# the rest of the ping, and a minute's resolution is plenty.
_last_used_written: dict[str, datetime | None] = {}


def _touch_last_used(key_id: str, now: datetime) -> None:
    written = _last_used_written.get(key_id)
    if written is None or now - written > LAST_USED_RESOLUTION:
        _last_used_written[key_id] = now
        VendorKey.objects.filter(pk=key_id).update(last_used_at=now)


def vendor_key_cache_clear(*, digests: list[str]) -> None:
    """Forget cached keys at once, and again when the surrounding transaction commits (so a ping
    that read the old row meanwhile cannot leave it cached)."""
    keys = [_cache_key(digest) for digest in digests]
    shared_cache_delete_many(keys)
    transaction.on_commit(lambda: shared_cache_delete_many(keys))


def vendor_cache_clear(*, vendor_id: int | None) -> None:
    """Forget every cached key of a vendor (its activity, states, limit or policies changed), or
    of every vendor (None: the operator's hours or holidays changed)."""
    keys = (
        VendorKey.objects.all()
        if vendor_id is None
        else VendorKey.objects.filter(vendor_id=vendor_id)
    )
    vendor_key_cache_clear(digests=list(keys.values_list("digest", flat=True)))


class VendorKeyLabelTaken(ApplicationError):
    status = 409


def _label_taken(*, vendor: Vendor, label: str) -> VendorKeyLabelTaken | None:
    """The refusal for a second unrevoked key with this label, if there is one already."""
    holder = VendorKey.objects.filter(vendor=vendor, label=label, revoked_at__isnull=True).first()
    if not label or holder is None:
        return None
    return VendorKeyLabelTaken(
        f"{vendor} already has an active key labelled “{label}” ({holder.prefix}…): "
        "rotate that key, revoke it first, or choose another label."
    )


@transaction.atomic
def vendor_key_create(
    *,
    vendor: Vendor,
    label: str = "",
    actor=None,
    key: str | None = None,
    sandbox: bool = False,
) -> tuple[VendorKey, str]:
    """A new key for the vendor. Returns the row and the key itself, which is never stored.
    `sandbox` makes a sandbox key (chosen now, for the key's life).

    A label names one unrevoked key of a vendor: a second is refused (VendorKeyLabelTaken),
    here and, for two requests at once, by the database's constraint. `key` is for the demo
    data only, whose key the integration guide prints.
    """
    if taken := _label_taken(vendor=vendor, label=label):
        raise taken
    plain = (key or str(uuid.uuid4())).lower()
    try:
        with transaction.atomic():
            vendor_key = VendorKey.objects.create(
                vendor=vendor,
                label=label,
                prefix=plain[:KEY_PREFIX_LENGTH],
                digest=vendor_key_digest(plain),
                created_by=actor,
                sandbox=sandbox,
            )
    except IntegrityError:
        # Another request made a key with this label since the check above (a double click).
        if taken := _label_taken(vendor=vendor, label=label):
            raise taken from None
        raise
    VendorKeyEvent.objects.create(
        key=vendor_key,
        action=VendorKeyEvent.Action.CREATED,
        actor=actor,
        detail="sandbox key" if sandbox else "",
    )
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


class VendorKeyNotRotatable(ApplicationError):
    status = 409
    message = "The key is revoked or already on its way out."


def vendor_key_check_rotatable(*, vendor_key: VendorKey, now: datetime | None = None) -> None:
    """Raise VendorKeyNotRotatable unless the key may be rotated: one with a revocation, past or
    pending (rotated once already, or revoked for later), is not, or it would get a second
    successor while the first is still live."""
    if vendor_key.revoked_at is None:
        return
    if vendor_key.revoked_at <= (now or timezone.now()):
        raise VendorKeyNotRotatable(f"Key {vendor_key.prefix}… is already revoked.")
    raise VendorKeyNotRotatable(
        f"Key {vendor_key.prefix}… already stops working at "
        f"{vendor_key.revoked_at:%Y-%m-%d %H:%M} UTC (rotated, or revoked for later): "
        "it is not rotated again."
    )


@transaction.atomic
def vendor_key_rotate(
    *, vendor_key: VendorKey, actor=None, revoke_old_at=None
) -> tuple[VendorKey, str]:
    """A new key for the same vendor, of the same kind (live or sandbox); the old one is revoked
    now or at `revoke_old_at`.

    The old key's row is locked and read again first: of two rotations at once (a double click),
    the second waits for the first to commit, then finds the key on its way out and raises
    VendorKeyNotRotatable, so a key never gets two successors.
    """
    locked = VendorKey.objects.select_for_update(no_key=True).get(pk=vendor_key.pk)
    vendor_key_check_rotatable(vendor_key=locked)
    # Revoked (now or for later) first, so the new key may take its label.
    vendor_key_revoke(vendor_key=vendor_key, actor=actor, at=revoke_old_at)
    new_key, plain = vendor_key_create(
        vendor=vendor_key.vendor, label=vendor_key.label, actor=actor, sandbox=locked.sandbox
    )
    VendorKeyEvent.objects.create(
        key=new_key,
        action=VendorKeyEvent.Action.ROTATED,
        actor=actor,
        detail=f"replaces {vendor_key.prefix}",
    )
    return new_key, plain
