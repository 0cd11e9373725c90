"""Archive and delete the call records older than the retention period (docs/operations.md)."""

import time

from django.conf import settings
from django.core.management.base import BaseCommand

from calls.retention import MonthPurged, call_records_purge, retention_cutoff
from routing.services import database_now


class Command(BaseCommand):
    help = (
        "Archive the call records of every month older than CALL_RECORD_RETENTION_DAYS to one "
        "gzip JSON Lines file per month, then delete them in small batches."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--days",
            type=int,
            default=None,
            help="Retention in days instead of CALL_RECORD_RETENTION_DAYS (0: keep for ever).",
        )
        parser.add_argument("--batch-rows", type=int, default=None)
        parser.add_argument(
            "--max-seconds", type=float, default=None, help="Stop between batches after this."
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Say what would go, change nothing."
        )

    def handle(self, *args, days, batch_rows, max_seconds, dry_run, **options):
        days = settings.CALL_RECORD_RETENTION_DAYS if days is None else days
        now = database_now()
        cutoff = retention_cutoff(now=now, days=days)
        if cutoff is None:
            self.stdout.write("Retention is off (0 days): nothing to do.")
            return
        if dry_run:
            from calls.models import CallRecord

            count = CallRecord.objects.filter(received_at__lt=cutoff).count()
            self.stdout.write(f"{count} call records received before {cutoff:%Y-%m-%d} would go.")
            return
        deadline = None if max_seconds is None else time.monotonic() + max_seconds
        result = call_records_purge(
            now=now, days=days, batch_rows=batch_rows, deadline=deadline, progress=self._progress
        )
        if result.skipped:
            self.stdout.write("Another purge is running: nothing done.")
            return
        for month in result.months:
            kept = f", {month.kept_rows} kept (still referenced)" if month.kept_rows else ""
            self.stdout.write(
                f"{month.month:%Y-%m}: {month.archived_rows} archived to {month.archive}, "
                f"{month.deleted_rows} deleted{kept}"
            )
        self.stdout.write(
            f"{result.deleted_rows} call records received before {cutoff:%Y-%m-%d} deleted"
            + ("." if result.finished else "; stopped at --max-seconds, run again to go on.")
        )

    def _progress(self, month: MonthPurged) -> None:
        if self.stderr.isatty():
            self.stderr.write(f"\r{month.month:%Y-%m}: {month.deleted_rows} deleted", ending="")
