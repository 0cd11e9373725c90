"""Longer database timeouts for the work that needs them: exports, the admin, migrations.

Every PostgreSQL connection starts with the web's limits (DATABASE_STATEMENT_TIMEOUT_MS,
DATABASE_LOCK_TIMEOUT_MS, set in the connection's options) so no ping waits on a stalled database
for longer than about 2 s. Work that reads a whole table, or changes a schema, lifts them to
DATABASE_LONG_STATEMENT_TIMEOUT_MS (0: no limit) on its own connection while it runs, and puts
them back after. Lifting in the code paths, rather than one setting per process, keeps the
defaults safe everywhere: a shell, a worker, or a command we did not think of gets the short ones.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.db.transaction import TransactionManagementError


def database_timeouts_lift(*, using: str = DEFAULT_DB_ALIAS) -> bool:
    """Lift the connection's statement and lock timeouts (and the client's deadline), for the
    session. True if anything was lifted: then `database_timeouts_restore` must follow."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return False  # SQLite has no statement timeout; its busy timeout bounds lock waits
    long_ms = str(settings.DATABASE_LONG_STATEMENT_TIMEOUT_MS)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('statement_timeout', %s, false),"
            " set_config('lock_timeout', %s, false)",
            [long_ms, long_ms],
        )
    _set_client_deadline(connection, settings.DATABASE_LONG_STATEMENT_TIMEOUT_MS)
    return True


def database_timeouts_restore(*, using: str = DEFAULT_DB_ALIAS) -> None:
    """Back to the limits the connection started with (its options)."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return
    if connection.connection is None or connection.connection.closed:
        return  # a new connection starts with them
    try:
        with connection.cursor() as cursor:
            cursor.execute("RESET statement_timeout; RESET lock_timeout")
    except (DatabaseError, TransactionManagementError):
        # Failed half-way (an aborted transaction, a lost server): never reused lifted.
        if connection.in_atomic_block:
            connection.close_at = 0  # closed at the end of the request
        else:
            connection.close()
        return
    _set_client_deadline(connection, settings.DATABASE_STATEMENT_TIMEOUT_MS)


@contextmanager
def database_timeouts_lifted(*, using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    lifted = database_timeouts_lift(using=using)
    try:
        yield
    finally:
        if lifted:
            database_timeouts_restore(using=using)


def _set_client_deadline(connection, statement_timeout_ms: int) -> None:
    from config.postgresql.base import client_deadline

    if connection.connection is not None:
        connection.connection.deadline = client_deadline(statement_timeout_ms)


def lift_for_migrations(sender, using=DEFAULT_DB_ALIAS, **kwargs) -> None:
    """pre_migrate: a migration may rewrite a large table or wait for a lock."""
    database_timeouts_lift(using=using)


def restore_after_migrations(sender, using=DEFAULT_DB_ALIAS, **kwargs) -> None:
    """post_migrate (also sent by flush): the test suite goes on using the connection."""
    database_timeouts_restore(using=using)
