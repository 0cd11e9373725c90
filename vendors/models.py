import hashlib
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from vendors.states import STATES

ALL_STATES_LABEL = "All"
KEY_PREFIX_LENGTH = 8


def vendor_key_digest(key: str) -> str:
    """SHA-256 of the canonical (lower-case) key.

    Keys are random UUIDs (122 bits), so a fast digest is safe and keeps the lookup one index hit.
    """
    return hashlib.sha256(key.lower().encode("ascii")).hexdigest()


class Vendor(models.Model):
    name = models.CharField(max_length=200, unique=True)
    is_active = models.BooleanField(default=True)
    all_states = models.BooleanField(
        default=False, help_text="Authorized for every state; the list below is then ignored."
    )
    authorized_states = models.JSONField(
        default=list, blank=True, help_text="Sorted USPS codes the vendor may send."
    )
    rate_limit_per_minute = models.PositiveIntegerField(
        null=True, blank=True, help_text="Pings a minute per key; empty uses the default."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        self.authorized_states = sorted(set(self.authorized_states or []))
        super().save(*args, **kwargs)

    def clean(self) -> None:
        codes = self.authorized_states or []
        unknown = [code for code in codes if code not in STATES]
        if unknown:
            raise ValidationError({"authorized_states": f"Unknown state codes: {unknown}"})
        self.authorized_states = sorted(set(codes))

    def authorized_state_list(self) -> list[str]:
        """What key validation answers: the sorted codes, or ["All"]."""
        return [ALL_STATES_LABEL] if self.all_states else list(self.authorized_states)

    def is_authorized_for(self, state: str) -> bool:
        return self.all_states or state in self.authorized_states


class VendorKeyQuerySet(models.QuerySet):
    def usable(self, now=None):
        now = now or timezone.now()
        return self.filter(models.Q(revoked_at__isnull=True) | models.Q(revoked_at__gt=now))


class VendorKey(models.Model):
    """A vendor's API key, stored only as a digest; the key itself is shown once, at creation."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    vendor = models.ForeignKey(Vendor, on_delete=models.CASCADE, related_name="keys")
    label = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=KEY_PREFIX_LENGTH, help_text="First characters, shown.")
    digest = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(
        null=True, blank=True, help_text="From this moment the key answers 401."
    )
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = VendorKeyQuerySet.as_manager()

    class Meta:
        ordering = ["vendor", "-created_at"]
        constraints = [
            # One key with no revocation per vendor and label: a label names one live key.
            # A key being rotated out (revoked for later) shares its label with its successor.
            models.UniqueConstraint(
                fields=["vendor", "label"],
                condition=models.Q(revoked_at__isnull=True) & ~models.Q(label=""),
                name="vendor_key_label_unique_unrevoked",
                violation_error_message="The vendor already has an active key with this label.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.vendor})"

    def is_usable(self, now=None) -> bool:
        return self.revoked_at is None or self.revoked_at > (now or timezone.now())


class VendorKeyEvent(models.Model):
    """Audit trail of key creation, rotation and revocation."""

    class Action(models.TextChoices):
        CREATED = "created"
        ROTATED = "rotated"
        REVOKED = "revoked"

    key = models.ForeignKey(VendorKey, on_delete=models.CASCADE, related_name="events")
    action = models.CharField(max_length=16, choices=Action.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    at = models.DateTimeField(default=timezone.now)
    detail = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.action} {self.key} at {self.at:%Y-%m-%d %H:%M}"
