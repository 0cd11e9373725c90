from django.apps import AppConfig


class CallsConfig(AppConfig):
    name = "calls"
    verbose_name = "Calls"

    def ready(self) -> None:
        from calls import checks  # noqa: F401  (registers the deploy checks)
        from calls.lifecycle import on_reservation_released
        from calls.telephony.queue import on_caller_assigned
        from routing.queue import caller_assigned
        from routing.signals import reservation_released

        # Routing gives agents to waiting callers; the telephony takes those calls to them.
        caller_assigned.connect(on_caller_assigned, dispatch_uid="calls.on_caller_assigned")
        # Routing ends holds early; the call record says so (routing never imports calls).
        reservation_released.connect(on_reservation_released, dispatch_uid="calls.released")
