import hashlib
import uuid
from datetime import time
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from vendors.states import STATE_CHOICES, STATES

if TYPE_CHECKING:
    from vendors.policies import VendorPolicies

ALL_STATES_LABEL = "All"
KEY_PREFIX_LENGTH = 8


def vendor_key_digest(key: str) -> str:
    """SHA-256 of the canonical (lower-case) key.

    Keys are random UUIDs (122 bits), so a fast digest is safe and keeps the lookup one index hit.
    """
    return hashlib.sha256(key.lower().encode("ascii")).hexdigest()


class DuplicateScope(models.TextChoices):
    """Whose transfers of a caller make a ping for that caller a duplicate."""

    VENDOR = "vendor", "this vendor's"
    ALL_VENDORS = "all_vendors", "every vendor's"


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
    # Policies the ping decides from the cached vendor (vendors.services) or in its statement.
    # Database defaults too: a process of the previous release still inserts vendors without them.
    consent_required = models.BooleanField(
        default=False,
        db_default=False,
        help_text="Pings must carry a TrustedForm certificate URL or a Jornaya LeadiD.",
    )
    duplicate_window_days = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text=(
            "Refuse a caller already transferred (connected) within this many days; empty: off."
        ),
    )
    duplicate_scope = models.CharField(
        max_length=16,
        choices=DuplicateScope.choices,
        default=DuplicateScope.VENDOR,
        db_default=DuplicateScope.VENDOR,
        help_text="Whose transfers count for the duplicate window.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    # Not a field: the policies loaded with the cached vendor (vendors.services).
    policies: "VendorPolicies | None" = None

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
    # Chosen when the key is made, never changed: a key that tested an integration must not start
    # holding real agents, nor a live key stop.
    sandbox = models.BooleanField(
        "sandbox key",
        default=False,
        editable=False,
        help_text=(
            "Answers every shape of the contract from magic caller numbers and never holds a "
            "real agent or transfer number; its pings are recorded as sandbox traffic."
        ),
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
        return f"{self.prefix}… ({self.vendor}{', sandbox' if self.sandbox else ''})"

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


class VendorCap(models.Model):
    """A vendor's limits, each optional: for all its states (state empty) or narrowed to one.

    A ping must pass every row that applies to it: the vendor's row and its state's row.
    """

    vendor = models.ForeignKey(Vendor, on_delete=models.CASCADE, related_name="caps")
    state = models.CharField(
        max_length=2,
        choices=STATE_CHOICES,
        blank=True,
        help_text="Empty: the limits count every state of the vendor together.",
    )
    most_at_once = models.PositiveIntegerField(
        null=True, blank=True, help_text="Live holds plus calls in progress at once."
    )
    most_per_hour = models.PositiveIntegerField(
        null=True, blank=True, help_text="Reservations per clock hour."
    )
    most_per_day = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Reservations per day (days start at midnight in OPERATOR_TIME_ZONE).",
    )

    class Meta:
        ordering = ["vendor", "state"]
        constraints = [
            models.UniqueConstraint(fields=["vendor", "state"], name="vendorcap_one_per_state")
        ]

    def __str__(self) -> str:
        return f"{self.vendor} caps ({self.state or 'all states'})"


class VendorReservationCount(models.Model):
    """Reservations a capped vendor made in one hour or day (per state, or all: state empty).

    The ping's statement adds to it as it reserves, so an hourly or daily cap reads a few rows
    instead of counting the window's reservations on every ping. A window's count is spread over
    slots (the statement picks one by its database connection), and is their sum: one row that
    every ping of the vendor updated would make those pings wait for each other's commits.
    """

    SLOTS = 64

    class Period(models.TextChoices):
        HOUR = "hour"
        DAY = "day"

    vendor = models.ForeignKey(Vendor, on_delete=models.CASCADE, related_name="+")
    state = models.CharField(max_length=2, blank=True)
    period = models.CharField(max_length=4, choices=Period.choices)
    starts_at = models.DateTimeField()
    slot = models.PositiveSmallIntegerField(default=0)
    reservations = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["vendor", "state", "period", "starts_at", "slot"],
                name="vendorreservationcount_unique",
            )
        ]

    def __str__(self) -> str:
        scope = self.state or "all states"
        return (
            f"{self.vendor} ({scope}), {self.period} of {self.starts_at}, slot {self.slot}: "
            f"{self.reservations}"
        )


class Weekday(models.IntegerChoices):
    """Python's numbering (date.weekday())."""

    MONDAY = 0
    TUESDAY = 1
    WEDNESDAY = 2
    THURSDAY = 3
    FRIDAY = 4
    SATURDAY = 5
    SUNDAY = 6


MIDNIGHT = time(0)


class OpeningHours(models.Model):
    """One opening period of a weekday, in the caller's time zone.

    Rows with no vendor are the operator's default schedule; a vendor with rows of its own uses
    only those. Neither: open at every hour. A day may have several periods; `closes` is
    exclusive, and 00:00 means the end of the day.
    """

    vendor = models.ForeignKey(
        Vendor,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="opening_hours",
        help_text="Empty: the operator's default schedule.",
    )
    weekday = models.PositiveSmallIntegerField(choices=Weekday.choices)
    opens = models.TimeField()
    closes = models.TimeField(help_text="Exclusive; 00:00 is midnight at the end of the day.")

    class Meta:
        ordering = ["vendor", "weekday", "opens"]
        verbose_name_plural = "opening hours"
        constraints = [
            models.CheckConstraint(
                condition=Q(closes__gt=models.F("opens")) | Q(closes=MIDNIGHT),
                name="openinghours_closes_after_opens",
                violation_error_message="A period closes after it opens (00:00: midnight).",
            )
        ]

    def __str__(self) -> str:
        owner = self.vendor or "Operator"
        return f"{owner}: {self.get_weekday_display()} {self.opens:%H:%M}-{self.closes:%H:%M}"


class Holiday(models.Model):
    """A day closed all day in the caller's time zone: the operator's (no vendor), for every
    vendor, or one vendor's."""

    vendor = models.ForeignKey(
        Vendor,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="holidays",
        help_text="Empty: closed for every vendor.",
    )
    date = models.DateField()
    name = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["date"]
        constraints = [
            models.UniqueConstraint(
                fields=["vendor", "date"],
                condition=Q(vendor__isnull=False),
                name="holiday_one_per_vendor_date",
            ),
            models.UniqueConstraint(
                fields=["date"],
                condition=Q(vendor__isnull=True),
                name="holiday_one_per_operator_date",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.vendor or 'Operator'}: {self.date} {self.name}".strip()
