"""A real Celery worker and beat for the tests, on the broker the settings name."""

import logging
import os
import threading
import time
from contextlib import contextmanager

import redis
from celery.beat import EmbeddedService
from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun
from django.conf import settings
from django.db import OperationalError

from config.celery import app


def broker_problem() -> str | None:
    url = settings.CELERY_BROKER_URL
    if url.startswith(("redis://", "rediss://")):
        try:
            redis.Redis.from_url(url, socket_connect_timeout=1).ping()
        except redis.RedisError as error:
            return f"the Redis broker at CELERY_BROKER_URL is unreachable ({error})"
    elif os.environ.get("REQUIRE_POSTGRES"):
        return "REQUIRE_POSTGRES is set but CELERY_BROKER_URL is not a redis:// URL"
    return None


class CeleryStack:
    """A real worker (in a thread, so it shares the test database) and, when asked, one beat."""

    def __init__(self, schedule_folder):
        self.schedule_folder = schedule_folder
        self.finished: set[str] = set()
        self._finished_changed = threading.Condition()

    @contextmanager
    def running(self, *, beat: bool):
        task_postrun.connect(self._on_task_finished)
        # The worker sets up Celery's logging on the root logger; later tests get theirs back.
        root = logging.getLogger()
        root_level, root_handlers = root.level, root.handlers[:]
        scheduler = None
        try:
            with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
                if beat:
                    scheduler = EmbeddedService(
                        app, thread=True, schedule_filename=str(self.schedule_folder / "beat")
                    )
                    scheduler.start()
                yield self
        finally:
            if scheduler is not None:
                scheduler.stop()
            task_postrun.disconnect(self._on_task_finished)
            root.setLevel(root_level)
            root.handlers[:] = root_handlers

    def purge(self) -> int:
        """Drop every waiting message, as a broker that lost them would."""
        return app.control.purge()

    def run(self, task, *args, timeout: float = 10) -> None:
        """Send a task to the worker and wait until the worker has run it."""
        task_id = task.delay(*args).id
        with self._finished_changed:
            if not self._finished_changed.wait_for(lambda: task_id in self.finished, timeout):
                raise AssertionError(f"the worker did not run {task.name} within {timeout} s")

    @staticmethod
    def wait_for(condition, *, timeout: float, interval: float = 0.1):
        """Poll `condition` until it returns something true; None if `timeout` passes first."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = condition()
            except OperationalError:
                # SQLite's shared in-memory test database refuses a read while the worker writes.
                value = None
            if value or time.monotonic() >= deadline:
                return value
            time.sleep(interval)

    def _on_task_finished(self, sender=None, task_id=None, **kwargs):
        with self._finished_changed:
            self.finished.add(task_id)
            self._finished_changed.notify_all()
