"""The expiry sweep's heartbeat: each run records itself, /readyz reads how long ago that was.

The sweep is the part of background work that must keep running (it expires what every lost or
late task missed), and it needs both beat and a worker: its last run says both are alive.
Times come from the database's clock, so a web machine and a worker with skewed clocks agree.
"""

from datetime import timedelta

from django.db.models import DurationField, ExpressionWrapper, F
from django.db.models.functions import Now

from calls.models import WorkerHeartbeat

SWEEP = "expiry-sweep"


def worker_heartbeat_record() -> None:
    if not WorkerHeartbeat.objects.filter(name=SWEEP).update(seen_at=Now()):
        WorkerHeartbeat.objects.bulk_create(
            [WorkerHeartbeat(name=SWEEP, seen_at=Now())], ignore_conflicts=True
        )


def worker_heartbeat_age() -> timedelta | None:
    """How long ago the sweep last ran; None if it never has."""
    age = ExpressionWrapper(Now() - F("seen_at"), output_field=DurationField())
    return (
        WorkerHeartbeat.objects.filter(name=SWEEP)
        .annotate(age=age)
        .values_list("age", flat=True)
        .first()
    )
