from django.apps import AppConfig


class CallsConfig(AppConfig):
    name = "calls"
    verbose_name = "Calls"

    def ready(self) -> None:
        from calls import checks  # noqa: F401  (registers the deploy checks)
        from calls.lifecycle import on_reservation_released
        from routing.signals import reservation_released

        reservation_released.connect(on_reservation_released, dispatch_uid="calls.released")
