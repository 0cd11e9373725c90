"""Postback jobs: thin, they call one service each."""

import logging

from calls.postbacks.delivery import postback_deliver, postback_deliveries_hand_out
from calls.postbacks.events import postback_events_collect
from config.celery import app
from routing.services import database_now

logger = logging.getLogger(__name__)


@app.task(name="postbacks.send_due", ignore_result=True)
def send_due_postbacks() -> None:
    """Beat's sweep: new events into the outbox, then every due delivery to a worker."""
    now = database_now()
    collected = postback_events_collect(now=now)
    handed = postback_deliveries_hand_out(now=now)
    for delivery_id, lease in handed:
        # A message lost here is handed out again when its lease runs out.
        deliver_postback.apply_async(args=[delivery_id, lease])
    if collected or handed:
        logger.info("Postbacks: %s new events, %s deliveries handed out", collected, len(handed))


@app.task(name="postbacks.deliver", ignore_result=True)
def deliver_postback(delivery_id: int, lease: str | None = None) -> None:
    postback_deliver(delivery_id=delivery_id, lease=lease, now=database_now())
