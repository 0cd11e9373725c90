"""Endpoints for load balancers and monitoring: /healthz, /readyz and /metrics.

They are answered by a middleware ahead of the rest, so a load balancer or a scraper that
addresses a process by its IP (a Host header not in ALLOWED_HOSTS) still gets an answer, and
so they never touch sessions, CSRF or the URL resolver.
"""

import logging
import time

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import JsonResponse
from kombu import Connection

from config.metrics import metrics_response

logger = logging.getLogger(__name__)


def check_database() -> None:
    # The connect timeout of the database settings bounds this when the server is gone.
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def check_broker() -> None:
    timeout = settings.READYZ_BROKER_TIMEOUT_SECONDS
    with Connection(
        settings.CELERY_BROKER_URL,
        connect_timeout=timeout,
        transport_options={"socket_timeout": timeout, "socket_connect_timeout": timeout},
    ) as broker:
        # One attempt, no retry loop: a dead broker must fail this check, not stall it.
        broker.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout)


class NoWorkerHeartbeat(Exception):
    """No Celery worker has run beat's expiry sweep lately (or ever)."""


def check_worker() -> None:
    # Pings are answered without a worker, so nothing else would notice that none runs.
    from calls.heartbeat import worker_heartbeat_age  # apps are not loaded at import time

    age = worker_heartbeat_age()
    if age is None:
        raise NoWorkerHeartbeat("no expiry sweep has run yet")
    if age.total_seconds() > settings.READYZ_WORKER_SECONDS:
        raise NoWorkerHeartbeat(f"the last expiry sweep ran {age.total_seconds():.0f} s ago")


def enabled_checks() -> dict:
    checks = {"database": check_database, "broker": check_broker}
    if settings.READYZ_WORKER_SECONDS:
        checks["worker"] = check_worker
    return checks


def healthz(request) -> JsonResponse:
    """Alive: the process answers. Touches nothing else."""
    return JsonResponse({"status": "ok"})


def readyz(request) -> JsonResponse:
    """Ready: the database and the broker answer, and a worker runs the sweep. 503 naming what
    failed otherwise."""
    results = {}
    for name, check in enabled_checks().items():
        if name == "worker" and results.get("database", "ok") != "ok":
            results[name] = "failed: database"  # read from it: no second wait on a dead one
            continue
        started = time.monotonic()
        try:
            check()
        except Exception as exc:  # any failure of a dependency is "not ready", never a 500
            if isinstance(exc, DatabaseError):
                connection.close_if_unusable_or_obsolete()
            logger.warning("Readiness check %s failed: %s", name, exc)
            results[name] = f"failed: {type(exc).__name__}"
        else:
            results[name] = "ok"
        logger.debug("Readiness check %s took %.3f s", name, time.monotonic() - started)
    ready = all(result == "ok" for result in results.values())
    return JsonResponse(
        {"status": "ready" if ready else "unavailable", "checks": results},
        status=200 if ready else 503,
    )


ENDPOINTS = {"/healthz": healthz, "/readyz": readyz, "/metrics": metrics_response}


class OpsEndpointsMiddleware:
    """Outermost: answers the ops endpoints; every other request costs one dict lookup."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        endpoint = ENDPOINTS.get(request.path_info)
        if endpoint is None:
            return self.get_response(request)
        if request.method not in ("GET", "HEAD"):
            response = JsonResponse({"status": "method not allowed"}, status=405)
            response["Allow"] = "GET, HEAD"
            return response
        response = endpoint(request)
        response["Cache-Control"] = "no-store"
        return response
