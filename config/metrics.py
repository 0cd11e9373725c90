"""Prometheus metrics: pings by outcome, ping latency, and the routing state at scrape time.

Counters and the histogram are prometheus_client's. Under gunicorn each worker process writes
them to files in PROMETHEUS_MULTIPROC_DIR (config/gunicorn.py sets that up), and a scrape served
by any one worker adds up every worker's files, dead workers' included. The gauges (free agents,
live reservations) are read from the database when scraped, so every process gives the same
answer and no process has to keep them up to date.
"""

import contextvars
import functools
import hmac
import ipaddress
import logging
import os
import time

from django.conf import settings
from django.db import DatabaseError
from django.db.models import Count
from django.http import HttpResponse
from django.utils import timezone
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

# Fine-grained around the p99 target (tens of milliseconds), coarse beyond.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25,
                   0.5, 1.0, 2.5)  # fmt: skip

PINGS = Counter(
    "callrouting_pings",
    "Pings answered. outcome: reserved, repeat, no_agent, rejected (403, recorded), "
    "key_validation, refused (a 4xx before any record), error (5xx) or sandbox (a sandbox "
    "key's ping, whatever its answer, its forced 500 included).",
    ["outcome", "status"],
)
PING_SECONDS = Histogram(
    "callrouting_ping_duration_seconds",
    "Time spent in the ping view, by outcome.",
    ["outcome"],
    buckets=LATENCY_BUCKETS,
)

# What the ping service decided, for the view's wrapper to count. None: nothing decided yet.
_ping_outcome: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "ping_outcome", default=None
)


def ping_outcome_note(outcome: str) -> None:
    """Called by the ping service once it knows what became of a ping."""
    _ping_outcome.set(outcome)


@functools.cache
def _children(outcome: str, status: int):
    """The labelled series, looked up once per process rather than on every ping."""
    return PINGS.labels(outcome, str(status)), PING_SECONDS.labels(outcome)


def observe_ping(view):
    """Wraps the ping view: one counter increment and one histogram observation per ping."""

    @functools.wraps(view)
    def observed(request, *args, **kwargs):
        token = _ping_outcome.set(None)
        started = time.perf_counter()
        try:
            response = view(request, *args, **kwargs)
            status = response.status_code
            outcome = _ping_outcome.get()
            if outcome == "sandbox":
                pass  # a sandbox key's answer, whatever its status (its 500 was asked for)
            elif status >= 500:
                outcome = "error"
            elif outcome is None or (status >= 400 and outcome != "rejected"):
                outcome = "refused"
            counter, histogram = _children(outcome, status)
            counter.inc()
            histogram.observe(time.perf_counter() - started)
            return response
        finally:
            _ping_outcome.reset(token)

    return observed


class RoutingStateCollector(Collector):
    """Gauges computed from the database at scrape time."""

    def collect(self):
        # Imported here: config must not load app models at import time.
        from routing.models import Agent, AgentLicense, Reservation, WaitingCaller

        now = timezone.now()
        up = GaugeMetricFamily(
            "callrouting_metrics_database_up", "1 if this scrape could read the database."
        )
        try:
            licensed = set(AgentLicense.objects.values_list("state", flat=True).distinct())
            free = dict(
                Agent.objects.free(now)
                .values_list("licenses__state")
                .annotate(count=Count("id", distinct=True))
                .values_list("licenses__state", "count")
            )
            live = Reservation.objects.live(now).count()
            waiting = dict(
                WaitingCaller.objects.waiting(now)
                .values_list("state")
                .annotate(count=Count("id"))
                .values_list("state", "count")
            )
        except DatabaseError:
            logger.warning("Metrics scrape could not read the database", exc_info=True)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        agents_free = GaugeMetricFamily(
            "callrouting_agents_free",
            "Agents free to take a call now, per state they are licensed for.",
            labels=["state"],
        )
        for state in sorted(licensed):
            agents_free.add_metric([state], free.get(state, 0))
        yield agents_free
        callers_waiting = GaugeMetricFamily(
            "callrouting_callers_waiting",
            "Transferred callers waiting in the queue for an agent, per state.",
            labels=["state"],
        )
        for state in sorted(licensed | set(waiting)):
            callers_waiting.add_metric([state], waiting.get(state, 0))
        yield callers_waiting
        yield GaugeMetricFamily(
            "callrouting_reservations_live", "Reservations holding an agent right now.", value=live
        )


class _DefaultRegistry(Collector):
    def collect(self):
        yield from REGISTRY.collect()


def _scrape_registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_DefaultRegistry())
    registry.register(RoutingStateCollector())
    return registry


def metrics_allowed(request) -> bool:
    """From an allowed address, or with the bearer token when one is set."""
    token = settings.METRICS_BEARER_TOKEN
    if token:
        sent = request.META.get("HTTP_AUTHORIZATION", "")
        if hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
            return True
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    if address.version == 6 and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address in network for network in settings.METRICS_ALLOWED_NETWORKS)


def metrics_response(request) -> HttpResponse:
    if not metrics_allowed(request):
        return HttpResponse("Forbidden.\n", status=403, content_type="text/plain")
    return HttpResponse(generate_latest(_scrape_registry()), content_type=CONTENT_TYPE_LATEST)
