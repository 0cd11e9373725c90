"""Publishing a task from a request without waiting on a hung broker for long.

A web request publishes on a broker connection of its own thread, with socket timeouts of
BROKER_PUBLISH_TIMEOUT_MS (the workers keep the broker settings Celery has): a broker that
accepts connections and never answers costs a request at most about twice that (a connection,
then one reply). After a failure, requests of this process skip publishing to that broker for
BROKER_PUBLISH_RETRY_SECONDS, so an outage costs one request the wait, not every request.
"""

import contextlib
import threading
import time

from django.conf import settings

from config.celery import app


class BrokerBackoff(Exception):
    """Not tried: publishing to this broker failed a moment ago."""


_local = threading.local()
_failed_until: dict[str, float] = {}  # broker URL -> when to try again


def task_publish(task, **options) -> None:
    """`task.apply_async(**options)`, bounded in time; raises whatever publishing raised."""
    url = app.conf.broker_write_url or app.conf.broker_url
    if time.monotonic() < _failed_until.get(url, 0.0):
        raise BrokerBackoff(f"publishing failed less than {_retry_seconds()} s ago")
    connection = _thread_connection(url)
    try:
        task.apply_async(connection=connection, **options)
    except Exception:
        _failed_until[url] = time.monotonic() + _retry_seconds()
        _drop_thread_connection()
        raise
    _failed_until.pop(url, None)


def _retry_seconds() -> int:
    return settings.BROKER_PUBLISH_RETRY_SECONDS


def _thread_connection(url: str):
    timeout = settings.BROKER_PUBLISH_TIMEOUT_MS / 1000
    key = (url, timeout)
    if getattr(_local, "key", None) != key:
        _drop_thread_connection()
        _local.connection = app.connection_for_write(
            url,
            connect_timeout=timeout,
            transport_options={"socket_timeout": timeout, "socket_connect_timeout": timeout},
        )
        _local.key = key
    return _local.connection


def _drop_thread_connection() -> None:
    connection = getattr(_local, "connection", None)
    _local.connection, _local.key = None, None
    if connection is not None:
        with contextlib.suppress(Exception):  # broken already; dropped either way
            connection.release()
