"""Test databases are made and dropped with no statement timeout: CREATE DATABASE copies a
template and can take longer than a web request may on a busy machine."""

from django.db.backends.postgresql import creation


def _without_timeouts(cursor) -> None:
    cursor.execute("SET statement_timeout = 0; SET lock_timeout = 0")
    cursor.db.connection.deadline = None


class DatabaseCreation(creation.DatabaseCreation):
    def _execute_create_test_db(self, cursor, parameters, keepdb=False):
        _without_timeouts(cursor)
        super()._execute_create_test_db(cursor, parameters, keepdb)

    def _destroy_test_db(self, test_database_name, verbosity):
        self.connection.close_pool()
        with self._nodb_cursor() as cursor:
            _without_timeouts(cursor)
            name = self.connection.ops.quote_name(test_database_name)
            cursor.execute(f"DROP DATABASE {name}")
