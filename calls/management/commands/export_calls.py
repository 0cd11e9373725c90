"""Export call records from the command line: CSV, XLSX or JSON Lines, to a file or stdout."""

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.http import QueryDict
from tqdm import tqdm

from calls.exports.forms import InvalidFilters, call_record_filters_parse
from calls.exports.jobs import call_export_write_file
from calls.exports.selectors import call_record_select
from calls.exports.writers import ExportTooLarge
from calls.models import CallExport
from config.database import database_timeouts_lifted
from vendors.models import Vendor


class Command(BaseCommand):
    help = (
        "Export the call records received in [--since, --until) as CSV, XLSX or JSON Lines. "
        "Dates are UTC; a bare date as --until means the end of that day."
    )

    def add_arguments(self, parser):
        parser.add_argument("--since", required=True, help="e.g. 2025-09-01 or 2025-09-01T12:00Z")
        parser.add_argument("--until", required=True, help="e.g. 2025-09-30 (included)")
        parser.add_argument(
            "--vendor", action="append", default=[], help="Vendor name or id; repeat for more."
        )
        parser.add_argument("--state", action="append", default=[], help="e.g. AZ; repeatable.")
        parser.add_argument(
            "--outcome", action="append", default=[], help="e.g. connected; repeatable."
        )
        parser.add_argument(
            "--reason",
            action="append",
            default=[],
            help="Why no agent was held, e.g. do_not_call; repeatable.",
        )
        parser.add_argument("--search", default="", help="The admin's search, e.g. a lead id.")
        parser.add_argument(
            "--sandbox",
            default="exclude",
            choices=["exclude", "include", "only"],
            help="Sandbox keys' test pings: left out (default), included, or alone.",
        )
        parser.add_argument("--format", required=True, choices=[f.value for f in _COMMAND_FORMATS])
        parser.add_argument(
            "--output", default="-", help="File to write, or - for standard output (default)."
        )

    def handle(self, *args, **options):
        data = QueryDict(mutable=True)
        data["since"], data["until"] = options["since"], options["until"]
        data.setlist("vendor", [_vendor_id(value) for value in options["vendor"]])
        data.setlist("state", options["state"])
        data.setlist("outcome", options["outcome"])
        data.setlist("reason", options["reason"])
        data["q"] = options["search"]
        data["sandbox"] = options["sandbox"]
        try:
            filters = call_record_filters_parse(data=data)
        except InvalidFilters as exc:
            raise CommandError(
                "; ".join(f"--{name}: {' '.join(errors)}" for name, errors in exc.errors.items())
            ) from None

        export_format = options["format"]
        to_stdout = options["output"] == "-"
        if export_format == CallExport.Format.XLSX and to_stdout and sys.stdout.isatty():
            raise CommandError("XLSX is binary: give --output FILE, or redirect standard output.")
        with database_timeouts_lifted():  # the web's statement timeout is for pings
            total = call_record_select(filters=filters).count()
        bar = tqdm(total=total, unit=" rows", file=sys.stderr, disable=not sys.stderr.isatty())
        progress = _BarProgress(bar)
        try:
            export = self._write(filters, export_format, options["output"], progress)
        except ExportTooLarge as exc:
            raise CommandError(exc.message) from None
        finally:
            bar.close()
        where = "standard output" if to_stdout else options["output"]
        records = "call record" if export.rows_written == 1 else "call records"
        sys.stderr.write(f"{export.rows_written} {records} written to {where}.\n")

    def _write(self, filters, export_format, output, progress):
        arguments = dict(
            user=None, filters=filters, export_format=export_format, source="command",
            progress=progress,
        )  # fmt: skip
        if export_format == CallExport.Format.XLSX:
            if output == "-":
                return call_export_write_file(**arguments, output=sys.stdout.buffer)
            return call_export_write_file(**arguments, output=Path(output))
        if output == "-":
            return call_export_write_file(**arguments, output=self.stdout._out)
        with open(output, "w", encoding="utf-8", newline="") as handle:
            return call_export_write_file(**arguments, output=handle)


_COMMAND_FORMATS = [CallExport.Format.CSV, CallExport.Format.XLSX, CallExport.Format.JSONL]


def _vendor_id(value: str) -> str:
    if value.isascii() and value.isdigit():
        return value
    vendor = Vendor.objects.filter(name__iexact=value).first()
    if vendor is None:
        raise CommandError(f"--vendor: no vendor is named {value!r}.")
    return str(vendor.pk)


class _BarProgress:
    """Services report rows written so far; tqdm wants the increment."""

    def __init__(self, bar):
        self.bar = bar
        self.shown = 0

    def __call__(self, rows: int) -> None:
        self.bar.update(rows - self.shown)
        self.shown = rows
