"""Vendors' postback endpoints, and the outbox of events owed to them with its delivery log."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from calls.models import CallRecord
from config.transitions import Transitions
from vendors.models import Vendor

SECRET_PREFIX = "whsec_"
SECRET_SHOWN_CHARACTERS = len(SECRET_PREFIX) + 4


class PostbackEventName(models.TextChoices):
    """What a vendor can ask to be told about one of its call records."""

    RESERVED = "reserved", "reserved (an agent was held for the caller)"
    CONNECTED = "connected", "connected (the transferred call arrived)"
    COMPLETED = "completed", "completed (the call ended)"
    BILLABLE = "billable", "billable (the call earned its payout)"
    EXPIRED = "expired", "expired (the hold ended without a call)"
    REFUSED = "refused", "refused (a policy turned the ping down)"


class PostbackEndpoint(models.Model):
    """One HTTPS address of a vendor's, and the events it wants."""

    vendor = models.ForeignKey(Vendor, on_delete=models.PROTECT, related_name="postback_endpoints")
    url = models.URLField(max_length=500, help_text="HTTPS, on a public address.")
    events = models.JSONField(default=list, help_text="The event names this endpoint is sent.")
    # Kept as it is, since every postback is signed with it; staff see it once, when made.
    secret = models.CharField(max_length=80, editable=False)
    is_active = models.BooleanField(default=True)
    description = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    secret_rotated_at = models.DateTimeField(null=True, blank=True)
    # The moment of the last sweep that collected every event owed to this endpoint.
    events_collected_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["vendor", "url"]

    def __str__(self) -> str:
        return f"{self.vendor} → {self.url}"

    @property
    def secret_hint(self) -> str:
        return f"{self.secret[:SECRET_SHOWN_CHARACTERS]}…" if self.secret else ""


class PostbackDelivery(models.Model):
    """One event owed to one endpoint (the outbox row), and how its delivery is going.

    The body is kept as the exact text sent, so every retry and resend carries the same bytes
    and the same idempotency key.
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        FAILED = "failed", "failed (gave up)"

    # Pending until an answer in 2xx, or until retries run out; staff may send any again.
    STATUS_TRANSITIONS = Transitions(
        {
            Status.PENDING: {Status.DELIVERED, Status.FAILED},
            Status.DELIVERED: {Status.PENDING},
            Status.FAILED: {Status.PENDING},
        }
    )

    endpoint = models.ForeignKey(
        PostbackEndpoint, on_delete=models.PROTECT, related_name="deliveries"
    )
    call_record = models.ForeignKey(
        CallRecord, on_delete=models.CASCADE, related_name="postback_deliveries"
    )
    event = models.CharField(max_length=16, choices=PostbackEventName.choices)
    idempotency_key = models.UUIDField()
    body = models.TextField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField()
    # Retries stop here (POSTBACK_RETRY_WINDOW_SECONDS after the event, or after a resend).
    give_up_at = models.DateTimeField()
    attempts = models.PositiveIntegerField(default=0)
    # When a worker may next try it; while a worker holds it, the end of that worker's lease.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "postback deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["endpoint", "call_record", "event"], name="postbackdelivery_once"
            )
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="postbackdelivery_due",
                condition=Q(status="pending"),
            )
        ]

    def __str__(self) -> str:
        return f"{self.event} of {self.call_record_id} to endpoint {self.endpoint_id}"


class PostbackAttempt(models.Model):
    """One HTTP request of a delivery: what the endpoint answered, or why there was no answer."""

    delivery = models.ForeignKey(PostbackDelivery, on_delete=models.CASCADE, related_name="tries")
    attempted_at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-attempted_at"]

    def __str__(self) -> str:
        return f"{self.status_code or self.error[:40]} at {self.attempted_at:%Y-%m-%d %H:%M:%S}"
