"""Django's PostgreSQL backend, with connections checked without a round trip.

Django's own pool check (CONN_HEALTH_CHECKS) sends a query to the server each time a request
takes a connection from the pool: a round trip per request (docs/performance.md). A connection
the server has ended (a restart, a terminated backend, an idle timeout) is readable while idle:
the server's goodbye message and the socket's end are waiting on it. So a connection taken from
the pool is polled, which costs no round trip, and only one with something waiting gets the full
check; one that fails it goes back to the pool, which discards it, and the next is taken.
Persistent connections (CONN_MAX_AGE with CONN_HEALTH_CHECKS) are checked the same way at each
request's first query; one that fails is closed and Django opens a new one.
A network path that dies silently is left to TCP keepalives.

Persistent connections end after a random part of CONN_MAX_AGE, between half of it and all of it:
a server's threads all connect at its start, and with one age they would all reconnect together,
every CONN_MAX_AGE, each thread's next ping paying for a new backend at the same moment (pauses
of up to 140 ms on two cores, the steady-rate p99's misses; docs/performance.md).

A server that is alive but sends nothing (a stopped process, a frozen host) is noticed by no
keepalive, and cannot enforce its own statement_timeout: each connection waits for the server
at most `deadline` seconds per operation, then is closed, and the request fails
(`DatabaseStalled`, answered 503) instead of waiting as long as the stall.
"""

import random
import select

import psycopg
from django.conf import settings
from django.db.backends.postgresql import base
from psycopg import errors
from psycopg_pool import ConnectionPool

from config.postgresql.creation import DatabaseCreation

# Past the statement timeout: the server's own cancellation, which leaves the connection usable,
# comes first whenever the server still runs.
CLIENT_MARGIN_SECONDS = 0.5


class DatabaseStalled(psycopg.OperationalError):
    """The server sent nothing within the connection's deadline; the connection is closed."""


class DeadlineConnection(psycopg.Connection):
    """psycopg's connection, waiting for the server at most `deadline` seconds per operation
    (None: for ever). config/database.py lifts it with the statement timeout."""

    deadline: float | None = None

    def wait(self, gen, interval=0.1, timeout=None):
        if timeout is not None or self.deadline is None:
            return super().wait(gen, interval=interval, timeout=timeout)
        try:
            return super().wait(gen, interval=interval, timeout=self.deadline)
        except errors._WaitTimeout:
            # Half-way through a exchange: the connection cannot be used again.
            self.close()
            raise DatabaseStalled(
                f"the database sent nothing for {self.deadline:g} s; connection closed"
            ) from None


def client_deadline(statement_timeout_ms: int) -> float | None:
    if not statement_timeout_ms:
        return None
    return statement_timeout_ms / 1000 + CLIENT_MARGIN_SECONDS


def connection_has_input(connection) -> bool:
    """True when something is waiting to be read on an idle connection (or it is closed)."""
    if connection.closed:
        return True
    poller = select.poll()
    poller.register(connection.fileno(), select.POLLIN)
    return bool(poller.poll(0))


class DatabaseWrapper(base.DatabaseWrapper):
    creation_class = DatabaseCreation

    def connect(self):
        super().connect()
        max_age = self.settings_dict["CONN_MAX_AGE"]
        if self.close_at is not None and max_age:
            self.close_at -= random.uniform(0, max_age / 2)

    def is_usable(self):
        # CONN_HEALTH_CHECKS with persistent connections: the same check, at each request's
        # first query, instead of Django's query every time.
        if self.connection is not None and not connection_has_input(self.connection):
            return True
        return super().is_usable()

    def get_new_connection(self, conn_params):
        connection = self._with_deadline(super().get_new_connection(conn_params))
        pool = self.pool
        if pool is None:
            return connection
        # Every connection in the pool could be dead (after a restart): try each at most once.
        for _ in range(pool.max_size):
            if not connection_has_input(connection):
                return connection
            try:
                ConnectionPool.check_connection(connection)
                return connection  # only a notice or a notification was waiting
            except self.Database.Error:
                pool.putconn(connection)  # broken now: the pool discards it and reconnects
            connection = self._with_deadline(super().get_new_connection(conn_params))
        return connection

    @staticmethod
    def _with_deadline(connection):
        # Django makes psycopg's own class (psycopg.connect, or the pool's); ours only adds a
        # wait with a deadline, no state, so the instance can take its class.
        if type(connection) is psycopg.Connection:
            connection.__class__ = DeadlineConnection
        connection.deadline = client_deadline(settings.DATABASE_STATEMENT_TIMEOUT_MS)
        return connection
