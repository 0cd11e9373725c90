"""Who can take a call and where it is sent.

Availability lives on the rows that are locked to claim it: an agent or a transfer number is free
when its `held_until` has passed (or was never set). Time alone frees them, so a reservation past
its TTL holds nothing even before any background job has run.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.db.models.functions import Now
from django.utils import timezone
from phonenumber_field.modelfields import PhoneNumberField

from config.transitions import Transitions
from routing.destinations import DESTINATION_HELP, InvalidDestination, normalize_destination
from vendors.models import Vendor
from vendors.states import STATE_CHOICES

# The querysets' rules are routing.allocation's, where the allocation statement's SQL forms of
# them sit beside them (imported on use: allocation imports these models).


class AgentQuerySet(models.QuerySet):
    def free(self, now):
        from routing.allocation import agent_is_free

        return self.filter(agent_is_free(now))

    def licensed_for(self, state: str):
        return self.filter(licenses__state=state)


class Agent(models.Model):
    class Status(models.TextChoices):
        AVAILABLE = "available", "available"
        OFFLINE = "offline", "offline"

    # Only through routing.services.agent_set_status (the page, the API, the admin, telephony).
    STATUS_TRANSITIONS = Transitions(
        {Status.AVAILABLE: {Status.OFFLINE}, Status.OFFLINE: {Status.AVAILABLE}}
    )

    name = models.CharField(max_length=200)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="agent",
        help_text="The login an agent uses for the agent page.",
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.AVAILABLE)
    destination = models.CharField(max_length=255, help_text=DESTINATION_HELP)
    # The ACD's longest-idle order: restarts when a call ends or the agent comes available,
    # never when an unused reservation expires.
    idle_since = models.DateTimeField(default=timezone.now, db_index=True)
    last_call_ended_at = models.DateTimeField(null=True, blank=True)
    on_call_since = models.DateTimeField(null=True, blank=True)
    # Reserved (or in wrap-up) until then; free once it has passed.
    held_until = models.DateTimeField(null=True, blank=True)
    wrap_up_seconds = models.PositiveIntegerField(
        "wrap-up seconds",
        default=0,
        help_text="Seconds after a call ends before the agent is offered again.",
    )
    whisper = models.BooleanField(
        default=False,
        help_text='Hear the vendor and state ("Call from Acme Leads, Arizona") before the '
        "caller is put through.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = AgentQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["status", "idle_since"], name="agent_status_idle")]

    def __str__(self) -> str:
        return self.name

    def clean(self):
        # Model validation, so the admin and anything else that validates an agent agree.
        if self.destination:
            try:
                self.destination = normalize_destination(self.destination)
            except InvalidDestination as refused:
                raise ValidationError({"destination": str(refused)}) from None

    @property
    def licensed_state_codes(self) -> list[str]:
        return sorted(license.state for license in self.licenses.all())


class AgentStatusChange(models.Model):
    """One change of an agent's status: from what to what, when, by whom and through what.

    Written only by `routing.services.agent_set_status`, in the transaction that makes the change.
    """

    class Source(models.TextChoices):
        PAGE = "page", "agent page"
        API = "api", "status API"
        ADMIN = "admin", "staff admin"
        TELEPHONY = "telephony", "telephony (rang out)"
        SYSTEM = "system", "system"

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="status_changes")
    from_status = models.CharField(max_length=16, choices=Agent.Status.choices)
    to_status = models.CharField(max_length=16, choices=Agent.Status.choices)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The login that made the change; empty for telephony and the system.",
    )
    source = models.CharField(max_length=16, choices=Source.choices)
    # The database's clock, so every web machine records changes on one time line.
    at = models.DateTimeField(db_default=Now())

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["agent", "-at"], name="agentstatuschange_agent_at")]

    def __str__(self) -> str:
        return f"{self.agent}: {self.from_status} → {self.to_status}"


class AgentLicense(models.Model):
    """One state an agent is licensed for (a row, so allocation can filter by index)."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="licenses")
    state = models.CharField(max_length=2, choices=STATE_CHOICES)

    class Meta:
        ordering = ["state"]
        constraints = [
            models.UniqueConstraint(fields=["state", "agent"], name="agentlicense_unique_state")
        ]

    def __str__(self) -> str:
        return f"{self.agent} - {self.state}"


class TransferNumberQuerySet(models.QuerySet):
    def free(self, now):
        from routing.allocation import number_is_free

        return self.filter(number_is_free(now))


class TransferNumber(models.Model):
    """A number of ours a vendor transfers the caller to; the number identifies the reservation."""

    number = PhoneNumberField(unique=True)
    is_active = models.BooleanField(default=True)
    # Held until then; once passed it is also when the number was released, so the allocation
    # hands out a number released long ago (see routing.allocation.NUMBER_WINDOW) and a late call
    # is not misrouted.
    held_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TransferNumberQuerySet.as_manager()

    class Meta:
        ordering = ["number"]

    def __str__(self) -> str:
        return str(self.number)


class ReservationStatus(models.TextChoices):
    ACTIVE = "active", "active"
    CONNECTED = "connected", "connected"
    EXPIRED = "expired", "expired"
    RELEASED = "released", "released"


class ReservationQuerySet(models.QuerySet):
    def live(self, now):
        """Holding its agent, number and caller at `now` (a moment, or Now() for the database's
        clock)."""
        from routing.allocation import reservation_is_live

        return self.filter(reservation_is_live(now))

    def lapsed(self, now):
        """Past its TTL at `now` but not yet marked expired."""
        from routing.allocation import reservation_has_lapsed

        return self.filter(reservation_has_lapsed(now))


class Reservation(models.Model):
    """One agent and one transfer number held for one vendor's caller until `expires_at`."""

    Status = ReservationStatus  # named here as well, for the indexes' conditions in Meta

    # Only a live hold ends, and once: its call arrived (connected), its TTL ran out (expired),
    # or staff or its agent going offline let it go (released).
    STATUS_TRANSITIONS = Transitions(
        {Status.ACTIVE: {Status.CONNECTED, Status.EXPIRED, Status.RELEASED}}
    )

    vendor = models.ForeignKey(Vendor, on_delete=models.PROTECT, related_name="reservations")
    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="reservations")
    transfer_number = models.ForeignKey(
        TransferNumber,
        on_delete=models.PROTECT,
        related_name="reservations",
        db_index=False,  # reservation_number_status leads with it
    )
    phone_number = models.CharField(max_length=16, help_text="The caller, E.164.")
    state = models.CharField(max_length=2, choices=STATE_CHOICES)
    agent_count = models.PositiveIntegerField()
    ttl_seconds = models.PositiveIntegerField("TTL seconds")
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    ended_at = models.DateTimeField(null=True, blank=True)
    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,  # reservation_released_by: only released ones are indexed
    )
    # The database's default too: the ping's one statement inserts reservations in SQL.
    release_reason = models.CharField(
        max_length=200,
        blank=True,
        default="",
        db_default="",
        help_text="Why staff released it, or that its agent went offline.",
    )

    objects = ReservationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(
                fields=["expires_at"],
                name="reservation_active_expiry",
                condition=Q(status=ReservationStatus.ACTIVE),
            ),
            models.Index(fields=["transfer_number", "status"], name="reservation_number_status"),
            # A capped vendor's live holds, counted by every capped ping (ping_cap_refusal):
            # only active ones, so the count never walks the vendor's past reservations.
            models.Index(
                fields=["vendor", "expires_at"],
                name="reservation_vendor_active",
                condition=Q(status=ReservationStatus.ACTIVE),
            ),
            models.Index(
                fields=["released_by"],
                name="reservation_released_by",
                condition=Q(released_by__isnull=False),
            ),
        ]
        # The last line of defence: even if the code were wrong, the database refuses a second
        # live hold of one agent, one number, or one vendor's caller in any state (a repeat must
        # not reserve).
        constraints = [
            models.UniqueConstraint(
                fields=["agent"],
                condition=Q(status=ReservationStatus.ACTIVE),
                name="reservation_one_live_per_agent",
            ),
            models.UniqueConstraint(
                fields=["transfer_number"],
                condition=Q(status=ReservationStatus.ACTIVE),
                name="reservation_one_live_per_number",
            ),
            models.UniqueConstraint(
                fields=["vendor", "phone_number"],
                condition=Q(status=ReservationStatus.ACTIVE),
                name="reservation_one_live_per_vendor_caller",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.phone_number} → {self.agent} via {self.transfer_number}"

    def is_live(self, now=None) -> bool:
        """`Reservation.objects.live(now)` for this row (routing.allocation.reservation_is_live)."""
        return self.status == self.Status.ACTIVE and self.expires_at > (now or timezone.now())

    def seconds_left(self, now=None) -> int:
        """Rounded up, at least 1 while live: what a repeat ping answers as ttlSeconds.

        Never more than the TTL: a repeat that arrived a moment before the first ping it raced
        (and lost to) would otherwise answer one second more.
        """
        remaining = (self.expires_at - (now or timezone.now())).total_seconds()
        return max(1, min(self.ttl_seconds, int(-(-remaining // 1))))


class WaitingCallerQuerySet(models.QuerySet):
    def waiting(self, now):
        """In the queue at `now`: waiting, and their longest wait not yet over."""
        from routing.allocation import caller_is_waiting

        return self.filter(caller_is_waiting(now))


class WaitingCaller(models.Model):
    """A transferred caller no agent could take, waiting in the queue for one licensed for
    `state`: the first such agent to become free is theirs, longest waiting caller first.

    The queue is ours (the carrier only plays the hold music): routing.queue gives agents to
    these rows, and the allocation holds back, for them, every agent licensed for a state whose
    caller waits (routing.allocation.agent_is_free).
    """

    class Status(models.TextChoices):
        WAITING = "waiting"
        # An agent is taken for the caller, whose call is being taken out of the queue to them.
        ASSIGNED = "assigned", "agent assigned"
        ENDED = "ended", "out of the queue"

    # Waiting until an agent is assigned, or the caller hangs up or waits too long; assigned
    # until the call leaves the queue for the agent (ended). A caller whose agent was not to be
    # had after all (assigned, or connected and the phone rang out) waits again in their place.
    STATUS_TRANSITIONS = Transitions(
        {
            Status.WAITING: {Status.ASSIGNED, Status.ENDED},
            Status.ASSIGNED: {Status.WAITING, Status.ENDED},
            Status.ENDED: {Status.WAITING},
        }
    )

    call_sid = models.CharField(max_length=64, unique=True, help_text="The carrier's call.")
    state = models.CharField(max_length=2, choices=STATE_CHOICES)
    queued_at = models.DateTimeField()
    wait_until = models.DateTimeField(
        help_text="The longest wait ends then: the call goes to overflow or the message."
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.WAITING)
    agent = models.ForeignKey(
        Agent,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="waiting_callers",
        db_index=False,  # waitingcaller_assigned: only assigned rows are looked up by agent
    )
    assigned_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    objects = WaitingCallerQuerySet.as_manager()

    class Meta:
        ordering = ["queued_at", "id"]
        indexes = [
            # The queue itself: what every ping and every freed agent asks about; small.
            models.Index(
                fields=["state", "queued_at"],
                name="waitingcaller_waiting",
                condition=Q(status="waiting"),
            ),
            models.Index(
                fields=["agent"],
                name="waitingcaller_assigned",
                condition=Q(status="assigned"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.call_sid} waiting for {self.state} since {self.queued_at:%H:%M:%S}"


class UnavailableReason(models.TextChoices):
    """Why a ping answered `agentAvailable: false`: the contract's reason codes."""

    NO_AGENT = "no_agent", "no agent free"
    CONCURRENCY_CAP = "concurrency_cap", "concurrency cap"
    HOURLY_CAP = "hourly_cap", "hourly cap"
    DAILY_CAP = "daily_cap", "daily cap"
    CLOSED = "closed", "closed (hours of operation)"
    DUPLICATE_CALLER = "duplicate_caller", "duplicate caller"
    DO_NOT_CALL = "do_not_call", "do not call"
    CONSENT_MISSING = "consent_missing", "consent missing"


class DoNotCallNumber(models.Model):
    """The operator's do-not-call list: a listed caller is refused for every vendor, before
    anything is held. Here, in routing, because the ping's statement (routing.allocation) is
    where the list is checked."""

    number = models.CharField(max_length=16, unique=True, help_text="E.164")
    source = models.CharField(
        max_length=100,
        blank=True,
        help_text="Where the number came from (a consumer's request...).",
    )
    reason = models.CharField(max_length=200, blank=True)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    added_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["number"]
        verbose_name = "do-not-call number"

    def __str__(self) -> str:
        return self.number


class DoNotCallChange(models.Model):
    """The do-not-call list's audit: every number added or removed, by whom and when. Kept after
    the number leaves the list, so it holds the number itself rather than a link."""

    class Action(models.TextChoices):
        ADDED = "added"
        REMOVED = "removed"

    number = models.CharField(max_length=16, help_text="E.164")
    action = models.CharField(max_length=8, choices=Action.choices)
    source = models.CharField(max_length=100, blank=True)
    reason = models.CharField(max_length=200, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    at = models.DateTimeField(default=timezone.now)
    detail = models.CharField(
        max_length=200, blank=True, help_text="How: one number, a paste, a file."
    )

    class Meta:
        ordering = ["-at"]
        indexes = [models.Index(fields=["number", "-at"], name="donotcallchange_number_at")]

    def __str__(self) -> str:
        return f"{self.number} {self.action} at {self.at:%Y-%m-%d %H:%M}"
