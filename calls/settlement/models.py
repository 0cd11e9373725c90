"""The vendors' billing rules: what makes a call billable and what it pays, from a date on.

Registered with the calls app (calls.models imports this module). A rule is never edited once it
has decided a call: a change is a new rule with a later `effective_from`, so settled call records
keep the rule, and the payout, that decided them.
"""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models

from vendors.models import Vendor

DEFAULT_MIN_TALK_SECONDS = 90
DEFAULT_DUPLICATE_WINDOW_DAYS = 30


class BillingRule(models.Model):
    """One vendor's terms from `effective_from` until its next rule's `effective_from`."""

    vendor = models.ForeignKey(Vendor, on_delete=models.PROTECT, related_name="billing_rules")
    effective_from = models.DateTimeField(
        help_text="Calls pinged from this moment on are settled by this rule, until a later one."
    )
    min_talk_seconds = models.PositiveIntegerField(
        default=DEFAULT_MIN_TALK_SECONDS,
        help_text="A call billed must have talked at least this long with an agent.",
    )
    payout = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        validators=[MinValueValidator(Decimal("0"))],
        help_text="Paid per billable call.",
    )
    currency = models.CharField(max_length=3, default="USD", help_text="ISO 4217, e.g. USD.")
    duplicate_window_days = models.PositiveIntegerField(
        default=DEFAULT_DUPLICATE_WINDOW_DAYS,
        help_text="A caller already billed for this vendor within this many days is not billed "
        "again (0: every call may bill).",
    )
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["vendor", "-effective_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["vendor", "effective_from"], name="billingrule_one_per_vendor_moment"
            ),
            models.CheckConstraint(
                condition=models.Q(payout__gte=0), name="billingrule_payout_not_negative"
            ),
        ]

    def __str__(self) -> str:
        since = f"{self.effective_from:%Y-%m-%d %H:%M}"
        return f"{self.vendor} from {since}: {self.payout} {self.currency}"
