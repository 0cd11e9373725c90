"""Endpoints for load balancers and monitoring: /healthz, /readyz and /metrics.

They are answered by a middleware ahead of the rest, so a load balancer or a scraper that
addresses a process by its IP (a Host header not in ALLOWED_HOSTS) still gets an answer, and
so they never touch sessions, CSRF or the URL resolver.
"""

import logging
import threading
import time

from django.conf import settings
from django.db import connection, connections
from django.http import JsonResponse
from kombu import Connection

from config.metrics import metrics_response

logger = logging.getLogger(__name__)

# /readyz answers from a result at most this old: a storm of probes costs one check a second.
READYZ_MAX_AGE_SECONDS = 1.0


def check_database() -> None:
    # The connect timeout and the statement timeout bound this; /readyz's own timeout too.
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


class _BrokerProbe:
    """One broker connection per process, kept open between checks: a check is a round trip
    on it (PING on Redis), never a new connection, unless the last check failed."""

    def __init__(self) -> None:
        self.connection: Connection | None = None
        self.key: tuple | None = None

    def check(self) -> None:
        timeout = settings.READYZ_BROKER_TIMEOUT_SECONDS
        key = (settings.CELERY_BROKER_URL, timeout)
        if self.key != key:
            self.release()
            self.key = key
        try:
            if self.connection is None:
                self.connection = Connection(
                    settings.CELERY_BROKER_URL,
                    connect_timeout=timeout,
                    transport_options={
                        "socket_timeout": timeout,
                        "socket_connect_timeout": timeout,
                    },
                )
            # One attempt, no retry loop: a dead broker must fail this check, not stall it.
            self.connection.ensure_connection(
                max_retries=1, interval_start=0, interval_step=0, timeout=timeout
            )
            client = getattr(self.connection.default_channel, "client", None)
            if client is not None:
                client.ping()  # Redis: an open connection proves nothing about a hung server
        except Exception:
            self.release()
            raise

    def release(self) -> None:
        if self.connection is not None:
            try:
                self.connection.release()
            except Exception:  # already broken; it is dropped either way
                logger.debug("Closing the readiness broker connection failed", exc_info=True)
            self.connection = None


_broker_probe = _BrokerProbe()


def check_broker() -> None:
    _broker_probe.check()


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
    """Each check raises when its dependency is not ready; the name is the key in the answer."""
    checks = {"database": check_database, "broker": check_broker}
    if settings.READYZ_WORKER_SECONDS:
        checks["worker"] = check_worker
    return checks


class _Run:
    """One pass over the checks, in a thread of its own."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.checks = enabled_checks()
        self.results: dict[str, str] = {}
        self.done = threading.Event()

    def __call__(self) -> None:
        try:
            for name, check in self.checks.items():
                if name == "worker" and self.results.get("database", "ok") != "ok":
                    self.results[name] = "failed: database"  # read from it: no second wait
                    continue
                started = time.monotonic()
                try:
                    check()
                except Exception as exc:  # any failure of a dependency is "not ready"
                    logger.warning("Readiness check %s failed: %s", name, exc)
                    self.results[name] = f"failed: {type(exc).__name__}"
                else:
                    self.results[name] = "ok"
                logger.debug("Readiness check %s took %.3f s", name, time.monotonic() - started)
        finally:
            connections.close_all()  # this thread's own; none is kept between runs
            _readiness.finish(self)
            self.done.set()

    def results_by_now(self) -> dict[str, str]:
        """Every check, those still running counted as failed."""
        return {name: self.results.get(name, "failed: timed out") for name in self.checks}


class _Readiness:
    """The last result, and at most one run in flight, per process.

    A caller with a result at most READYZ_MAX_AGE_SECONDS old gets it. Otherwise the first
    caller starts a run and waits for it, at most READYZ_TIMEOUT_SECONDS; callers meanwhile get
    the last result without waiting, or the run's results so far once it is overdue. So however
    many probes arrive, and however long a dependency hangs, one thread per process waits.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.last: dict[str, str] | None = None
        self.last_at = 0.0
        self.running: _Run | None = None

    def results(self) -> dict[str, str]:
        timeout = settings.READYZ_TIMEOUT_SECONDS
        with self.lock:
            now = time.monotonic()
            if self.last is not None and now - self.last_at <= READYZ_MAX_AGE_SECONDS:
                return self.last
            run = self.running
            if run is None:
                run = self.running = _Run()
                threading.Thread(target=run, name="readiness-checks", daemon=True).start()
            elif self.last is not None and now - run.started < timeout:
                return self.last
        if run.done.wait(max(0.0, run.started + timeout - time.monotonic())):
            return run.results_by_now()
        results = run.results_by_now()
        with self.lock:
            if self.running is run:  # still hung: answer from this until a run finishes
                self.last, self.last_at = results, time.monotonic()
        return results

    def finish(self, run: _Run) -> None:
        with self.lock:
            if self.running is run:  # not a run forgotten by reset()
                self.last, self.last_at = run.results_by_now(), time.monotonic()
                self.running = None

    def reset(self) -> None:
        with self.lock:
            self.last, self.last_at, self.running = None, 0.0, None
        _broker_probe.release()


_readiness = _Readiness()


def readiness_reset() -> None:
    """Forget the last result (tests: each starts with no cached answer)."""
    _readiness.reset()


def healthz(request) -> JsonResponse:
    """Alive: the process answers. Touches nothing else: no database, no broker."""
    return JsonResponse({"status": "ok"})


def readyz(request) -> JsonResponse:
    """Ready: the database and the broker answer, and a worker runs the sweep. 503 naming what
    failed otherwise."""
    results = _readiness.results()
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
