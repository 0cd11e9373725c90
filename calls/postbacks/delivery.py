"""Sending postbacks: who is due, one HTTP attempt, and what it leaves in the delivery log.

Beat's sweep hands each due delivery to a worker with a lease (its next_attempt_at moved to the
lease's end), so a lost message is handed out again when the lease runs out, and a delivery the
broker brings twice is sent once: the worker sends only while the lease it was given is the one
on the row. An answer in 2xx delivers; anything else (another status, a timeout, a refused
address) is retried with exponential backoff, until POSTBACK_RETRY_WINDOW_SECONDS after the
event, then the delivery is failed. Staff can send any delivery again from the admin.
"""

import http.client
import logging
import socket
import ssl
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction

from calls.postbacks.addresses import PostbackAddressRefused, PostbackTarget, postback_url_check
from calls.postbacks.models import PostbackAttempt, PostbackDelivery
from calls.postbacks.signing import (
    EVENT_HEADER,
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    postback_signature_header,
)

logger = logging.getLogger(__name__)

USER_AGENT = "callrouting-postbacks/1"
# A worker's hold on a delivery: longer than one attempt can take.
LEASE_SECONDS = 120
# What the log keeps of an answer's body and of an error.
KEPT_CHARACTERS = 500
# Deliveries handed to workers per sweep; the next sweep hands out the rest.
HAND_OUT_BATCH = 500


@dataclass(frozen=True)
class PostbackAnswer:
    status_code: int | None
    error: str  # empty when the endpoint answered 2xx

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def postback_retry_delay(attempts: int) -> timedelta:
    """The wait after the given number of failed attempts: base, twice that, ... capped."""
    seconds = settings.POSTBACK_RETRY_BASE_SECONDS * 2 ** max(0, attempts - 1)
    return timedelta(seconds=min(seconds, settings.POSTBACK_RETRY_MAX_DELAY_SECONDS))


def postback_deliveries_hand_out(*, now: datetime) -> list[tuple[int, str]]:
    """Lease every due delivery; (id, lease) for each, to publish to workers. Deliveries to an
    endpoint staff deactivated wait, pending, until it is active again."""
    lease_end = now + timedelta(seconds=LEASE_SECONDS)
    due = list(
        PostbackDelivery.objects.filter(
            status=PostbackDelivery.Status.PENDING,
            next_attempt_at__lte=now,
            endpoint__is_active=True,
        )
        .order_by("next_attempt_at")
        .values_list("pk", "next_attempt_at")[:HAND_OUT_BATCH]
    )
    handed = []
    for pk, due_at in due:
        # Compare-and-set: a delivery handed out meanwhile (a second sweep) is not handed twice.
        claimed = PostbackDelivery.objects.filter(
            pk=pk, status=PostbackDelivery.Status.PENDING, next_attempt_at=due_at
        ).update(next_attempt_at=lease_end)
        if claimed:
            handed.append((pk, lease_end.isoformat()))
    return handed


def postback_deliver(*, delivery_id: int, lease: str | None, now: datetime) -> bool:
    """One attempt at a delivery handed out under `lease` (None: send it whatever its lease, for
    tests and the shell). Whether an attempt was made."""
    delivery = PostbackDelivery.objects.select_related("endpoint").filter(pk=delivery_id).first()
    if delivery is None or delivery.status != PostbackDelivery.Status.PENDING:
        return False
    if lease is not None and (
        delivery.next_attempt_at is None or delivery.next_attempt_at.isoformat() != lease
    ):
        return False  # handed out again since (a redelivered message, or a resend)
    started = time.monotonic()
    answer = _send(delivery, now)
    elapsed_ms = int((time.monotonic() - started) * 1000)
    _record_attempt(delivery, answer, now, elapsed_ms)
    return True


def _send(delivery: PostbackDelivery, now: datetime) -> PostbackAnswer:
    endpoint = delivery.endpoint
    if not endpoint.is_active:
        return PostbackAnswer(None, "The endpoint is inactive.")
    try:
        target = postback_url_check(endpoint.url)  # again: the address may have changed
    except PostbackAddressRefused as refusal:
        return PostbackAnswer(None, str(refusal))
    body = delivery.body.encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        SIGNATURE_HEADER: postback_signature_header(
            secret=endpoint.secret, timestamp=int(now.timestamp()), body=delivery.body
        ),
        IDEMPOTENCY_HEADER: str(delivery.idempotency_key),
        EVENT_HEADER: delivery.event,
    }
    connection = _connection(target)
    try:
        connection.request("POST", target.path, body=body, headers=headers)
        response = connection.getresponse()
        excerpt = response.read(KEPT_CHARACTERS).decode("utf-8", "replace")
    except (OSError, http.client.HTTPException) as exc:
        return PostbackAnswer(None, _describe(exc))
    finally:
        connection.close()
    if 200 <= response.status < 300:
        return PostbackAnswer(response.status, "")
    return PostbackAnswer(response.status, f"HTTP {response.status}: {excerpt}".strip())


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | socket.timeout):
        return "Timed out."
    return f"{type(exc).__name__}: {exc}"[:KEPT_CHARACTERS]


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the address that was checked, whatever the host resolves to now."""

    def __init__(self, target: PostbackTarget):
        super().__init__(target.host, target.port, timeout=settings.POSTBACK_READ_TIMEOUT_SECONDS)
        self.target = target

    def _pinned_socket(self) -> socket.socket:
        sock = socket.create_connection(
            (self.target.address, self.target.port),
            timeout=settings.POSTBACK_CONNECT_TIMEOUT_SECONDS,
        )
        sock.settimeout(settings.POSTBACK_READ_TIMEOUT_SECONDS)
        return sock

    def connect(self) -> None:
        self.sock = self._pinned_socket()


class _PinnedHTTPSConnection(_PinnedHTTPConnection):
    """HTTPS to the checked address, the certificate verified for the URL's host name."""

    def connect(self) -> None:
        context = ssl.create_default_context()
        self.sock = context.wrap_socket(self._pinned_socket(), server_hostname=self.target.host)


def _connection(target: PostbackTarget) -> _PinnedHTTPConnection:
    if target.scheme == "https":
        return _PinnedHTTPSConnection(target)
    return _PinnedHTTPConnection(target)


@transaction.atomic
def _record_attempt(
    delivery: PostbackDelivery, answer: PostbackAnswer, now: datetime, elapsed_ms: int
) -> None:
    PostbackAttempt.objects.create(
        delivery=delivery,
        attempted_at=now,
        status_code=answer.status_code,
        error=answer.error[:KEPT_CHARACTERS],
        duration_ms=elapsed_ms,
    )
    delivery.attempts += 1
    delivery.last_attempt_at = now
    delivery.last_status_code = answer.status_code
    delivery.last_error = answer.error[:KEPT_CHARACTERS]
    if answer.delivered:
        delivery.status = PostbackDelivery.Status.DELIVERED
        delivery.delivered_at = now
        delivery.next_attempt_at = None
    else:
        retry_at = now + postback_retry_delay(delivery.attempts)
        if retry_at > delivery.give_up_at:
            delivery.status = PostbackDelivery.Status.FAILED
            delivery.next_attempt_at = None
            logger.warning("Postback %s failed for good: %s", delivery.pk, answer.error)
        else:
            delivery.next_attempt_at = retry_at
    delivery.save(
        update_fields=[
            "attempts", "last_attempt_at", "last_status_code", "last_error", "status",
            "delivered_at", "next_attempt_at",
        ]
    )  # fmt: skip


def postback_deliveries_resend(*, delivery_ids: list[int], now: datetime) -> int:
    """Staff's resend: the deliveries are due again now, with the same body and idempotency key
    (a resend is the same event), and a fresh retry window."""
    return PostbackDelivery.objects.filter(pk__in=delivery_ids).update(
        status=PostbackDelivery.Status.PENDING,
        next_attempt_at=now,
        give_up_at=now + timedelta(seconds=settings.POSTBACK_RETRY_WINDOW_SECONDS),
    )
