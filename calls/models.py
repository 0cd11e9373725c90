"""What happened to each ping and each call: the records analysts export."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Left

from calls.settlement.models import BillingRule
from config.moments import moment_text
from config.transitions import Transitions
from routing.models import Agent, Reservation, UnavailableReason
from vendors.models import Vendor
from vendors.states import STATE_CHOICES

# The lead_id's characters the index holds. Tracking data is stored whatever its size, and
# PostgreSQL refuses a B-tree entry over 2,704 bytes: 255 characters are at most 1,020.
LEAD_ID_INDEXED_CHARACTERS = 255


def lead_id_indexed():
    """The expression of the lead_id index: the start of tracking ->> 'lead_id'."""
    return Left(KeyTextTransform("lead_id", "tracking"), LEAD_ID_INDEXED_CHARACTERS)


class CallStatus(models.TextChoices):
    """Where a call or one of its legs stands: the carrier's words (Twilio's CallStatus and
    DialCallStatus values, stored as it sends them), and one of ours, UNHEARD."""

    QUEUED = "queued", "queued"
    INITIATED = "initiated", "initiated"
    RINGING = "ringing", "ringing"
    IN_PROGRESS = "in-progress", "in progress"
    ANSWERED = "answered", "answered"
    COMPLETED = "completed", "completed"
    BUSY = "busy", "busy"
    NO_ANSWER = "no-answer", "no answer"
    FAILED = "failed", "failed"
    CANCELED = "canceled", "canceled"
    # Ours: the stale-call sweep ended the call because no callback told us how it ended.
    UNHEARD = "unheard", "unheard (ended by the stale-call sweep)"


# How a call or a leg can end (a leg that was answered reports "completed" when it ends).
CALL_ENDS = (
    CallStatus.COMPLETED,
    CallStatus.BUSY,
    CallStatus.NO_ANSWER,
    CallStatus.FAILED,
    CallStatus.CANCELED,
)


class WaitResult(models.TextChoices):
    """How a caller's wait in the queue ended."""

    CONNECTED = "connected", "connected to an agent"
    OVERFLOW = "overflow", "longest wait over (overflow or message)"
    HUNG_UP = "hung_up", "hung up while waiting"


class CallRecordQuerySet(models.QuerySet):
    def live_traffic(self):
        """Real pings only: what reports, scorecards and payouts count. Sandbox keys' pings
        (`sandbox`) held nothing and are test traffic."""
        return self.filter(sandbox=False)

    def sandbox_traffic(self):
        return self.filter(sandbox=True)


class CallRecord(models.Model):
    """One ping that passed the key, phone and state checks, and what became of it."""

    # Labels in lower case, as the admin writes every outcome and status.
    class Outcome(models.TextChoices):
        RESERVED = "reserved", "reserved"
        REPEAT = "repeat", "repeat"
        NO_AGENT = "no_agent", "no agent"
        REJECTED = "rejected", "rejected"
        CONNECTED = "connected", "connected"
        COMPLETED = "completed", "completed"
        EXPIRED = "expired", "expired"
        RELEASED = "released", "released"  # early, by staff or the agent going offline
        # A policy (do-not-call, consent, duplicate, hours, caps) refused the ping: see reason.
        REFUSED = "refused", "refused"

    # The ping writes the first outcome; only a reserved one moves on: its call arrived
    # (connected, then completed when it ended), or its reservation ended without one (expired
    # by its TTL, or released early). A call arriving late still credits its record.
    OUTCOME_TRANSITIONS = Transitions(
        {
            Outcome.RESERVED: {Outcome.CONNECTED, Outcome.EXPIRED, Outcome.RELEASED},
            Outcome.EXPIRED: {Outcome.CONNECTED},
            Outcome.RELEASED: {Outcome.CONNECTED},
            Outcome.CONNECTED: {Outcome.COMPLETED},
        }
    )

    class Billable(models.TextChoices):
        PENDING = "pending", "pending"  # the call may still run
        YES = "yes", "yes"
        NO = "no", "no"

    # Pending until the record's end is known, then decided. A record found not billable because
    # no call came goes back to pending if its call arrives late after all; the carrier's word
    # on the talk time, arriving after the call ended, may turn yes and no (by the same rule).
    BILLABLE_TRANSITIONS = Transitions(
        {
            Billable.PENDING: {Billable.YES, Billable.NO},
            Billable.NO: {Billable.PENDING, Billable.YES},
            Billable.YES: {Billable.NO},
        }
    )

    class NotBillableReason(models.TextChoices):
        NO_CALL = "no_call", "no call"
        NOT_ANSWERED = "not_answered", "not answered"
        UNDER_MINIMUM = "under_minimum", "under minimum talk"
        DUPLICATE = "duplicate", "billed before (window)"
        UNMATCHED = "unmatched", "unmatched"
        REPEAT = "repeat", "repeat"
        NO_AGENT = "no_agent", "no agent"
        REFUSED = "refused", "refused"
        REJECTED = "rejected", "rejected"
        NO_RULE = "no_rule", "no rule"
        SANDBOX = "sandbox", "sandbox"

    class StateSource(models.TextChoices):
        STATE_CODE = "state_code", "stateCode"
        AREA_CODE = "area_code", "area code"

    request_id = models.UUIDField(unique=True, default=uuid.uuid4, editable=False)
    # Indexes below, each one the ping must keep up: callrecord_vendor_received leads with the
    # vendor, the phone's is a plain one (search is exact or `contains`, never a prefix).
    vendor = models.ForeignKey(
        Vendor, on_delete=models.PROTECT, related_name="call_records", db_index=False
    )
    phone_number = models.CharField(max_length=16, help_text="E.164")
    state = models.CharField(max_length=2, choices=STATE_CHOICES)
    state_source = models.CharField(max_length=16, choices=StateSource.choices)
    tracking = models.JSONField(default=dict, blank=True, help_text="The vendor's own fields.")
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    rejected_reason = models.CharField(max_length=200, blank=True)
    # The contract's reason code of an unavailable answer (no agent, or a policy's refusal).
    # Database defaults: a process of the previous release still inserts records without these.
    reason = models.CharField(
        max_length=32, choices=UnavailableReason.choices, blank=True, default="", db_default=""
    )
    # Consent evidence the ping carried, when well formed (whether or not the vendor requires it).
    trustedform_cert_url = models.CharField(
        "TrustedForm certificate URL", max_length=100, blank=True, default="", db_default=""
    )
    jornaya_leadid = models.CharField(
        "Jornaya LeadiD", max_length=36, blank=True, default="", db_default=""
    )
    # A sandbox key's ping (calls.ping.sandbox): its answer was forced by the caller's number and
    # held no agent or number. Reports, exports and the API leave these out unless asked.
    sandbox = models.BooleanField(
        default=False,
        db_default=False,
        help_text="Sent with a sandbox key: test traffic, nothing was held.",
    )
    reservation = models.ForeignKey(
        Reservation, null=True, blank=True, on_delete=models.SET_NULL, related_name="call_records"
    )
    repeat_of = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="repeats",
        db_index=False,  # callrecord_repeat_of: only repeats are indexed
    )
    transfer_target = models.CharField(max_length=16, blank=True)
    agent = models.ForeignKey(
        Agent, null=True, blank=True, on_delete=models.SET_NULL, related_name="call_records"
    )
    agent_count = models.PositiveIntegerField(null=True, blank=True)
    ttl_seconds = models.PositiveIntegerField("TTL seconds", null=True, blank=True)
    received_at = models.DateTimeField(db_index=True)
    # Filled in when the transferred call arrives and as it progresses.
    connected_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    duration_seconds = models.PositiveIntegerField(null=True, blank=True)
    caller_id = models.CharField(
        "caller ID", max_length=32, blank=True, help_text="Caller ID on arrival."
    )
    caller_id_matches = models.BooleanField("caller ID matches", null=True, blank=True)
    call_status = models.CharField(
        max_length=32, blank=True, choices=CallStatus.choices, help_text="Last carrier status."
    )
    # The transferred call's wait in the queue, when nobody could take it at once.
    queued_at = models.DateTimeField(null=True, blank=True, help_text="Waiting since.")
    dequeued_at = models.DateTimeField(null=True, blank=True, help_text="Waited until.")
    # With a database default, as every column added since: rows written in SQL (the benches'
    # seeds of a million records) need not name it.
    wait_result = models.CharField(
        max_length=16, blank=True, choices=WaitResult.choices, default="", db_default=""
    )
    # Settlement (calls.settlement): decided when the record's end is known, by the vendor's rule
    # in effect when the ping was received; never rewritten by a later rule. Database defaults
    # too, for the rows written in SQL (bench seeds, scripts).
    billable = models.CharField(
        max_length=8,
        choices=Billable.choices,
        default=Billable.PENDING,
        db_default=Billable.PENDING,
    )
    not_billable_reason = models.CharField(
        max_length=16, blank=True, choices=NotBillableReason.choices, default="", db_default=""
    )
    payout = models.DecimalField(
        max_digits=12, decimal_places=2, null=True, blank=True, help_text="Null until decided."
    )
    payout_currency = models.CharField(max_length=3, blank=True, default="", db_default="")
    billing_rule = models.ForeignKey(
        BillingRule,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="call_records",
        db_index=False,  # callrecord_billing_rule: only decided ones are indexed
    )
    billing_decided_at = models.DateTimeField(null=True, blank=True)
    # The matched call's latest word: ringing when it arrives, then its legs' (a leg that rang out
    # gives way to the next one's answer), then its end. Canceled becomes completed when the
    # Dial's action says the agent talked after all.
    CALL_STATUS_TRANSITIONS = Transitions(
        {
            "": {CallStatus.RINGING},
            CallStatus.RINGING: {CallStatus.ANSWERED, *CALL_ENDS},
            CallStatus.ANSWERED: set(CALL_ENDS),
            CallStatus.BUSY: {CallStatus.ANSWERED, *CALL_ENDS},
            CallStatus.NO_ANSWER: {CallStatus.ANSWERED, *CALL_ENDS},
            CallStatus.FAILED: {CallStatus.ANSWERED, *CALL_ENDS},
            CallStatus.CANCELED: {CallStatus.COMPLETED},
        }
    )

    objects = CallRecordQuerySet.as_manager()

    class Meta:
        ordering = ["-received_at"]
        permissions = [("export_callrecord", "Can export call records")]
        indexes = [
            models.Index(fields=["vendor", "received_at"], name="callrecord_vendor_received"),
            models.Index(fields=["state", "received_at"], name="callrecord_state_received"),
            models.Index(fields=["outcome", "received_at"], name="callrecord_outcome_received"),
            models.Index(fields=["phone_number"], name="callrecord_phone"),
            models.Index(
                fields=["repeat_of"],
                name="callrecord_repeat_of",
                condition=Q(repeat_of__isnull=False),
            ),
            models.Index(
                fields=["billing_rule"],
                name="callrecord_billing_rule",
                condition=Q(billing_rule__isnull=False),
            ),
            # Staff search by the vendor's lead_id (admin: exact match on tracking ->> 'lead_id').
            models.Index(lead_id_indexed(), name="callrecord_lead_id_start"),
            # Exact search by consent evidence: only the pings that carried some pay for it.
            models.Index(
                fields=["trustedform_cert_url"],
                name="callrecord_trustedform",
                condition=~Q(trustedform_cert_url=""),
            ),
            models.Index(
                fields=["jornaya_leadid"],
                name="callrecord_jornaya",
                condition=~Q(jornaya_leadid=""),
            ),
            # A vendor's calls in progress, for its concurrency cap: few rows at any moment.
            models.Index(
                fields=["vendor", "state"],
                name="callrecord_in_progress",
                condition=Q(outcome="connected"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.request_id} {self.outcome}{' (sandbox)' if self.sandbox else ''}"


class InboundCallQuerySet(models.QuerySet):
    def waiting(self):
        """Callers in the queue now (the floor's "callers waiting"), longest waiting first."""
        return self.filter(queued_at__isnull=False, dequeued_at__isnull=True).order_by("queued_at")


class InboundCall(models.Model):
    """A call that reached one of our numbers, matched to a reservation or not."""

    class Match(models.TextChoices):
        MATCHED = "matched", "matched"
        LATE = "late", "late (after the TTL)"
        NO_RESERVATION = "no_reservation", "no live reservation"
        UNKNOWN_NUMBER = "unknown_number", "number not in the pool"

    call_sid = models.CharField("call SID", max_length=64, unique=True)
    to_number = models.CharField(max_length=32)
    from_number = models.CharField(max_length=32, blank=True)
    match = models.CharField(max_length=16, choices=Match.choices)
    # The caller's call: ringing when it arrives, forward only while it goes on (callbacks come
    # out of order; a late "ringing" is old news), then one end. A call the sweep ended (UNHEARD)
    # still takes the carrier's end if it arrives. A leg answered makes the call in progress.
    STATUS_TRANSITIONS = Transitions(
        {
            CallStatus.QUEUED: {
                CallStatus.INITIATED, CallStatus.RINGING, CallStatus.IN_PROGRESS,
                CallStatus.ANSWERED, CallStatus.UNHEARD, *CALL_ENDS,
            },
            CallStatus.INITIATED: {
                CallStatus.RINGING, CallStatus.IN_PROGRESS, CallStatus.ANSWERED,
                CallStatus.UNHEARD, *CALL_ENDS,
            },
            CallStatus.RINGING: {
                CallStatus.IN_PROGRESS, CallStatus.ANSWERED, CallStatus.UNHEARD, *CALL_ENDS,
            },
            CallStatus.ANSWERED: {CallStatus.IN_PROGRESS, CallStatus.UNHEARD, *CALL_ENDS},
            CallStatus.IN_PROGRESS: {CallStatus.UNHEARD, *CALL_ENDS},
            CallStatus.UNHEARD: set(CALL_ENDS),
        }
    )  # fmt: skip

    call_record = models.ForeignKey(
        CallRecord, null=True, blank=True, on_delete=models.SET_NULL, related_name="inbound_calls"
    )
    routed_to = models.CharField(
        max_length=255, blank=True, help_text="Agent destination, overflow number, or message."
    )
    state = models.CharField(
        max_length=2,
        choices=STATE_CHOICES,
        blank=True,
        help_text="Whose agents may take it: the reservation's state, else the caller's area code.",
    )
    status = models.CharField(max_length=32, blank=True, choices=CallStatus.choices)
    received_at = models.DateTimeField(db_index=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    duration_seconds = models.PositiveIntegerField(null=True, blank=True)
    # In the queue from queued_at until dequeued_at (empty while the caller still waits), and how
    # the wait ended. A caller whose agent rang out waits again in their old place: queued_at
    # stays, dequeued_at and wait_result are cleared until they leave again.
    queued_at = models.DateTimeField(null=True, blank=True, help_text="Waiting since.")
    dequeued_at = models.DateTimeField(null=True, blank=True, help_text="Waited until.")
    wait_result = models.CharField(max_length=16, blank=True, choices=WaitResult.choices)

    objects = InboundCallQuerySet.as_manager()

    class Meta:
        ordering = ["-received_at"]
        indexes = [
            # Callers waiting now, for the floor: few rows, whatever the table's size.
            models.Index(
                fields=["state", "queued_at"],
                name="inboundcall_waiting",
                condition=Q(queued_at__isnull=False, dequeued_at__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return f"{self.call_sid} to {self.to_number}"

    @property
    def waiting(self) -> bool:
        """In the queue now."""
        return self.queued_at is not None and self.dequeued_at is None

    @property
    def wait_seconds(self) -> int | None:
        """Seconds in the queue, once the wait is over."""
        if self.queued_at is None or self.dequeued_at is None:
            return None
        return max(0, round((self.dequeued_at - self.queued_at).total_seconds()))


class DialAttempt(models.Model):
    """One try at connecting an inbound call to an agent or the overflow number."""

    # Initiated when we dial, forward while the leg rings and answers, then one end: the Dial's
    # action, or the caller's call ending first (completed if answered, else canceled). A leg
    # settled as canceled becomes completed when the Dial's action says the agent talked.
    STATUS_TRANSITIONS = Transitions(
        {
            CallStatus.INITIATED: {CallStatus.RINGING, CallStatus.ANSWERED, *CALL_ENDS},
            CallStatus.RINGING: {CallStatus.ANSWERED, *CALL_ENDS},
            CallStatus.ANSWERED: set(CALL_ENDS),
            CallStatus.CANCELED: {CallStatus.COMPLETED},
        }
    )

    inbound_call = models.ForeignKey(InboundCall, on_delete=models.CASCADE, related_name="attempts")
    agent = models.ForeignKey(
        Agent, null=True, blank=True, on_delete=models.SET_NULL, related_name="dial_attempts"
    )
    destination = models.CharField(max_length=255)
    attempt = models.PositiveSmallIntegerField()
    started_at = models.DateTimeField()
    status = models.CharField(max_length=32, blank=True, choices=CallStatus.choices)
    duration_seconds = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["inbound_call", "attempt"]
        constraints = [
            models.UniqueConstraint(fields=["inbound_call", "attempt"], name="dialattempt_unique")
        ]

    def __str__(self) -> str:
        return f"attempt {self.attempt} to {self.destination}"


class CallExport(models.Model):
    """An analyst's export: the audit record, and for background jobs the file and its progress."""

    class Format(models.TextChoices):
        CSV = "csv", "CSV"
        XLSX = "xlsx", "XLSX"
        JSONL = "jsonl", "JSON Lines"
        JSON = "json", "JSON (API pages)"

    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        RUNNING = "running", "running"
        DONE = "done", "done"
        FAILED = "failed", "failed"

    # A background job is claimed once (pending to running) or fails before it starts; a file
    # written as it is asked for starts running.
    STATUS_TRANSITIONS = Transitions(
        {
            Status.PENDING: {Status.RUNNING, Status.FAILED},
            Status.RUNNING: {Status.DONE, Status.FAILED},
        }
    )

    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_at = models.DateTimeField(auto_now_add=True)
    source = models.CharField(max_length=16, help_text="admin, api or command")
    filters = models.JSONField(default=dict, blank=True)
    format = models.CharField(max_length=8, choices=Format.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    row_count = models.PositiveIntegerField(null=True, blank=True)
    rows_written = models.PositiveIntegerField(default=0)
    file = models.FileField(upload_to="exports/", blank=True)
    error = models.TextField(blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(rows_written__gte=0), name="callexport_rows_written_positive"
            )
        ]

    def __str__(self) -> str:
        return f"{self.format} export of {moment_text(self.requested_at)}"


class WorkerHeartbeat(models.Model):
    """When a Celery worker last ran beat's expiry sweep: /readyz reads it to notice that no
    worker (or no beat) is running, since pings are answered all the same."""

    name = models.CharField(max_length=32, primary_key=True)
    seen_at = models.DateTimeField(help_text="The database's clock, so web and worker agree.")

    def __str__(self) -> str:
        return f"{self.name} at {moment_text(self.seen_at)}"
