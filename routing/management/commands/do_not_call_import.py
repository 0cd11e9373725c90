"""Add a CSV file's numbers to the do-not-call list from the command line, as the admin's upload
does (all or nothing, each bad line named), without the web's limits on a file's size and a
request's time."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from config.database import database_timeouts_lifted
from routing.do_not_call import DoNotCallInvalid, do_not_call_add, do_not_call_read_csv


class Command(BaseCommand):
    help = (
        "Add the numbers of a CSV file (columns number, source, reason; a header row optional) "
        "to the do-not-call list. Any bad line refuses the whole file, each named."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--source", default="", help="For lines without a source of their own.")
        parser.add_argument("--reason", default="", help="For lines without a reason of their own.")

    def handle(self, *args, file: Path, source: str, reason: str, **options):
        try:
            data = file.read_bytes()
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror}.") from None
        try:
            with database_timeouts_lifted():
                result = do_not_call_add(
                    entries=do_not_call_read_csv(data=data, limited=False),
                    source=source[:100],
                    reason=reason[:200],
                    actor=None,
                    detail=f"command, file {file.name}",
                )
        except DoNotCallInvalid as refused:
            raise CommandError(
                f"Nothing was added from {file}:\n" + "\n".join(refused.problems)
            ) from None
        self.stdout.write(
            f"Added {len(result.added)}; already listed {len(result.already_listed)}; "
            f"repeated lines {len(result.repeated)}."
        )
