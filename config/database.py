"""Longer database timeouts for the work that needs them (exports, the admin, migrations), and
the analysts' replica (`analytics_db`, below).

Every PostgreSQL connection starts with the web's limits (DATABASE_STATEMENT_TIMEOUT_MS,
DATABASE_LOCK_TIMEOUT_MS, set in the connection's options) so no ping waits on a stalled database
for longer than about 2 s. Work that reads a whole table, or changes a schema, lifts them to
DATABASE_LONG_STATEMENT_TIMEOUT_MS (0: no limit) on its own connection while it runs, and puts
them back after. Lifting in the code paths, rather than one setting per process, keeps the
defaults safe everywhere: a shell, a worker, or a command we did not think of gets the short ones.
"""

import contextlib
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.db.transaction import TransactionManagementError

logger = logging.getLogger(__name__)


def transaction_lock(key: str) -> None:
    """Hold PostgreSQL's advisory lock named `key` until the transaction ends: whoever asks for
    the same name waits until then. Call inside a transaction. SQLite serializes writers already,
    so there it does nothing."""
    connection = connections[DEFAULT_DB_ALIAS]
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [key])


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


# --- The analysts' replica (DATABASE_REPLICA_URL) ----------------------------------------------

REPLICA_DB_ALIAS = "replica"

# Seconds the replica's replay is behind the primary, as the replica itself knows it: nothing
# when everything received is replayed and the primary is still streaming to it, else the age of
# the last transaction it replayed. Not a replica (promoted, or a primary by mistake): None.
_REPLICA_LAG_SQL = """
SELECT CASE
    WHEN NOT pg_is_in_recovery() THEN NULL
    WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn()
         AND EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming') THEN 0
    ELSE COALESCE(EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp()), 1e9)
END
"""

# When this process last found the replica down or behind (time.monotonic()).
_replica_refused_at: float | None = None


def analytics_db() -> str:
    """The database alias for analysts' heavy reads: the replica while it answers within the lag
    bound, else the primary. Use it as `Model.objects.using(analytics_db())`; scorecards and
    charts should too. One query on the replica per call; a replica found down or behind is left
    alone for DATABASE_REPLICA_RETRY_SECONDS, so a dead one costs a failed connect at most that
    often."""
    global _replica_refused_at
    if REPLICA_DB_ALIAS not in settings.DATABASES:
        return DEFAULT_DB_ALIAS
    if _replica_refused_at is not None:
        if time.monotonic() - _replica_refused_at < settings.DATABASE_REPLICA_RETRY_SECONDS:
            return DEFAULT_DB_ALIAS
        _replica_refused_at = None
    lag = replica_lag_seconds()
    if lag is None or lag > settings.DATABASE_REPLICA_MAX_LAG_SECONDS:
        _replica_refused_at = time.monotonic()
        logger.warning(
            "Analysts' reads go to the primary: the replica is %s",
            "unreachable or not a replica" if lag is None else f"{lag:.0f} s behind",
        )
        return DEFAULT_DB_ALIAS
    return REPLICA_DB_ALIAS


def replica_lag_seconds() -> float | None:
    """How far the replica's replay is behind, in seconds; None if it cannot be asked."""
    connection = connections[REPLICA_DB_ALIAS]
    try:
        with connection.cursor() as cursor:
            cursor.execute(_REPLICA_LAG_SQL)
            lag = cursor.fetchone()[0]
    except DatabaseError:
        # Closed, so the next try connects afresh instead of reusing a broken connection.
        with contextlib.suppress(DatabaseError):
            connection.close()
        return None
    return None if lag is None else float(lag)


class PrimaryReplicaRouter:
    """Everything reads and writes on the primary unless the code names the replica
    (`analytics_db()`); objects from either are the same rows; only the primary is migrated."""

    def db_for_read(self, model, **hints):
        return None

    def db_for_write(self, model, **hints):
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints):
        return True

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == DEFAULT_DB_ALIAS
