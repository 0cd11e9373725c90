"""Django's PostgreSQL backend, with connections checked without a round trip.

Django's own pool check (CONN_HEALTH_CHECKS) sends a query to the server each time a request
takes a connection from the pool: a round trip that cost about a tenth of a ping. A connection
the server has ended (a restart, a terminated backend, an idle timeout) is readable while idle:
the server's goodbye message and the socket's end are waiting on it. So a connection taken from
the pool is polled, which costs no round trip, and only one with something waiting gets the full
check; one that fails it goes back to the pool, which discards it, and the next is taken.
Persistent connections (CONN_MAX_AGE with CONN_HEALTH_CHECKS) are checked the same way at each
request's first query; one that fails is closed and Django opens a new one.
A network path that dies silently is left to TCP keepalives.
"""

import select

from django.db.backends.postgresql import base
from psycopg_pool import ConnectionPool


def connection_has_input(connection) -> bool:
    """True when something is waiting to be read on an idle connection (or it is closed)."""
    if connection.closed:
        return True
    poller = select.poll()
    poller.register(connection.fileno(), select.POLLIN)
    return bool(poller.poll(0))


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self):
        # CONN_HEALTH_CHECKS with persistent connections: the same check, at each request's
        # first query, instead of Django's query every time.
        if self.connection is not None and not connection_has_input(self.connection):
            return True
        return super().is_usable()

    def get_new_connection(self, conn_params):
        connection = super().get_new_connection(conn_params)
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
            connection = super().get_new_connection(conn_params)
        return connection
