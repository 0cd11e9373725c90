"""Migration operations of our own.

Imported by migrations: change them only in ways old migrations can live with.
"""

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db.migrations.operations import AddIndex, RemoveIndex


class AddIndexWithoutBlockingWrites(AddIndexConcurrently):
    """AddIndex, built with CREATE INDEX CONCURRENTLY on PostgreSQL: the call records and
    reservations a deploy indexes can be large, and a plain CREATE INDEX would hold every ping's
    insert until the build ends. Elsewhere (SQLite) a plain AddIndex. The migration holding it
    must be `atomic = False`; a build that fails leaves an invalid index to drop by hand.
    """

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return AddIndex.database_forwards(self, app_label, schema_editor, from_state, to_state)
        return super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return AddIndex.database_backwards(self, app_label, schema_editor, from_state, to_state)
        return super().database_backwards(app_label, schema_editor, from_state, to_state)


class RemoveIndexWithoutBlockingWrites(RemoveIndexConcurrently):
    """RemoveIndex, dropped with DROP INDEX CONCURRENTLY on PostgreSQL (a plain DROP INDEX waits
    for every transaction on the table and holds every insert meanwhile). Elsewhere a plain
    RemoveIndex. The migration holding it must be `atomic = False`.
    """

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return RemoveIndex.database_forwards(
                self, app_label, schema_editor, from_state, to_state
            )
        return super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return RemoveIndex.database_backwards(
                self, app_label, schema_editor, from_state, to_state
            )
        return super().database_backwards(app_label, schema_editor, from_state, to_state)
