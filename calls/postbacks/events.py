"""Which call records owe which postback events, and the outbox rows that record them.

The one place an event is defined: EVENT_RULES says, for each event name, which call
records it has happened to. Beat's sweep (`postback_events_collect`) turns every such record of
a vendor with an endpoint wanting the event into one outbox row per endpoint, once (a unique
constraint). The call records are the durable facts: nothing is lost when the broker or a worker
is down (the next sweep finds the event still owed), and the ping, which stays one SQL statement,
is never slowed by a vendor's endpoints.
"""

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef, Q

from calls.models import CallRecord
from calls.postbacks.models import PostbackDelivery, PostbackEndpoint, PostbackEventName
from calls.timestamps import format_timestamp

Outcome = CallRecord.Outcome
# The policy refusals' outcome, added beside this code: by name, so the condition holds before
# and after it exists.
OUTCOME_REFUSED = "refused"


@dataclass(frozen=True)
class EventRule:
    """Which call records an event has happened to, and the record's field that says when."""

    condition: Q
    # Set to the event's moment when it happens: a sweep reads only records whose moment is
    # after its last run (less MOMENT_MARGIN), so it reads few rows however many there are.
    moment: str


# event -> its rule. Repeats never reserve anything of their own. A hold that ended without a
# call is expired, whether by its TTL or released early (the body's outcome tells which): the
# update that ends it also settles it, so its moment is billing_decided_at, as a billable one's.
EVENT_RULES: dict[str, EventRule] = {
    PostbackEventName.RESERVED: EventRule(
        ~Q(transfer_target="") & ~Q(outcome=Outcome.REPEAT), "received_at"
    ),
    PostbackEventName.CONNECTED: EventRule(
        Q(connected_at__isnull=False) & ~Q(outcome=Outcome.REPEAT), "connected_at"
    ),
    PostbackEventName.COMPLETED: EventRule(Q(outcome=Outcome.COMPLETED), "ended_at"),
    PostbackEventName.BILLABLE: EventRule(
        Q(billable=CallRecord.Billable.YES), "billing_decided_at"
    ),
    PostbackEventName.EXPIRED: EventRule(
        Q(outcome__in=[Outcome.EXPIRED, Outcome.RELEASED]), "billing_decided_at"
    ),
    PostbackEventName.REFUSED: EventRule(Q(outcome=OUTCOME_REFUSED), "received_at"),
}
# A moment is written in a transaction that commits a little later: a sweep reads moments this
# far before its last run as well (the outbox's unique constraint drops what it had already).
MOMENT_MARGIN = timedelta(minutes=10)

# Records per endpoint and event in one sweep; the next sweep takes the rest.
COLLECT_BATCH = 500
_IDEMPOTENCY_NAMESPACE = uuid.UUID("8d0f5b8e-4c1a-4f57-9a3e-5f0f6f1d2c10")


def postback_idempotency_key(*, request_id: uuid.UUID | str, event: str) -> uuid.UUID:
    """Stable per call record and event: every retry and resend of it carries the same one."""
    return uuid.uuid5(_IDEMPOTENCY_NAMESPACE, f"{request_id}:{event}")


def record_settlement_json(record: CallRecord) -> dict:
    """Billable and payout as vendors read them, in postbacks and the vendor API alike."""
    return {
        "billable": record.billable or None,
        "billableReason": record.not_billable_reason or None,
        "payout": (
            {"amount": str(record.payout), "currency": record.payout_currency or None}
            if record.payout is not None
            else None
        ),
    }


def postback_body(*, record: CallRecord, event: str, now: datetime) -> str:
    """The JSON text sent for an event: what is known of the call record when it is seen."""
    body = {
        "event": event,
        "eventId": str(postback_idempotency_key(request_id=record.request_id, event=event)),
        "occurredAt": format_timestamp(now),
        "requestId": str(record.request_id),
        "tracking": record.tracking,
        "outcome": record.outcome,
        # A refused ping's reason, as its answer gave it (the contract's codes); else null.
        "reason": record.reason if record.outcome == CallRecord.Outcome.REFUSED else None,
        "sandbox": record.sandbox,  # a sandbox key's test ping: nothing was held
        "receivedAt": format_timestamp(record.received_at),
        "phoneNumber": record.phone_number,
        "state": record.state,
        "talkTimeSeconds": record.duration_seconds,
        "callerIdMatch": record.caller_id_matches,
        **record_settlement_json(record),
    }
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def postback_events_collect(*, now: datetime) -> int:
    """Add an outbox row for every event owed to an active endpoint; how many were added.

    Only records received since the endpoint was made (a new endpoint is not flooded with
    history) and within POSTBACK_EVENT_LOOKBACK_SECONDS (a call's whole life); of those, only the
    records whose event's moment is after the endpoint's last sweep. Run
    twice at once, the unique constraint keeps one row per event.
    """
    lookback = now - timedelta(seconds=settings.POSTBACK_EVENT_LOOKBACK_SECONDS)
    give_up_at = now + timedelta(seconds=settings.POSTBACK_RETRY_WINDOW_SECONDS)
    added = 0
    # A vendor set inactive still hears what became of the calls it sent before.
    for endpoint in PostbackEndpoint.objects.filter(is_active=True):
        since = max(endpoint.created_at, lookback)
        moments_since = (endpoint.events_collected_at or endpoint.created_at) - MOMENT_MARGIN
        complete = True
        for event in endpoint.events:
            rule = EVENT_RULES.get(event)
            if rule is None:
                continue
            owed = (
                CallRecord.objects.filter(vendor_id=endpoint.vendor_id, received_at__gte=since)
                .filter(rule.condition)
                .filter(**{f"{rule.moment}__gte": moments_since})
            )
            owed = owed.exclude(
                Exists(
                    PostbackDelivery.objects.filter(
                        endpoint=endpoint, event=event, call_record=OuterRef("pk")
                    )
                )
            ).order_by("received_at", "pk")[:COLLECT_BATCH]
            rows = [
                PostbackDelivery(
                    endpoint=endpoint,
                    call_record=record,
                    event=event,
                    idempotency_key=postback_idempotency_key(
                        request_id=record.request_id, event=event
                    ),
                    body=postback_body(record=record, event=event, now=now),
                    created_at=now,
                    give_up_at=give_up_at,
                    next_attempt_at=now,
                )
                for record in owed
            ]
            complete = complete and len(rows) < COLLECT_BATCH
            added += len(PostbackDelivery.objects.bulk_create(rows, ignore_conflicts=True))
        if complete:  # else the next sweep reads from the same moment on
            PostbackEndpoint.objects.filter(pk=endpoint.pk).update(events_collected_at=now)
    return added
