"""Settle the call records still pending whose end is known (those from before settlement)."""

from django.core.management.base import BaseCommand

from calls.settlement.billing import call_records_settle_pending
from config.database import database_timeouts_lifted
from routing.services import database_now


class Command(BaseCommand):
    help = (
        "Settle every call record still pending whose end is known: not billable by its outcome, "
        "or decided by the vendor's billing rule for a completed call. Safe to run again."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=1000)

    def handle(self, *args, **options):
        with database_timeouts_lifted():
            settled = call_records_settle_pending(
                now=database_now(), batch_size=max(1, options["batch_size"])
            )
        self.stdout.write(f"Settled {settled} call record(s).")
