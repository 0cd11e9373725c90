from django.apps import AppConfig
from django.db.backends.signals import connection_created


def _register_natural_collation(sender, connection, **kwargs) -> None:
    # PostgreSQL has it from a migration (an ICU collation); SQLite needs it on each connection.
    if connection.vendor == "sqlite":
        from routing.activity import NATURAL_COLLATION, natural_compare

        connection.connection.create_collation(NATURAL_COLLATION, natural_compare)


class RoutingConfig(AppConfig):
    name = "routing"
    verbose_name = "Routing"

    def ready(self):
        connection_created.connect(
            _register_natural_collation, dispatch_uid="routing-natural-collation"
        )
