"""A vendor's statement from the command line: a table, or CSV for a spreadsheet."""

from django.core.management.base import BaseCommand, CommandError
from django.http import QueryDict

from calls.exports.forms import CallRecordFilterForm
from calls.settlement.statements import (
    REASONS,
    vendor_statement,
    vendor_statement_csv,
)
from config.database import database_timeouts_lifted
from vendors.models import Vendor


class Command(BaseCommand):
    help = (
        "A vendor's statement for the call records received in [--since, --until): counts by "
        "day, billable and not by reason, and the payout. Dates are UTC; a bare date as --until "
        "means the end of that day."
    )

    def add_arguments(self, parser):
        parser.add_argument("--vendor", required=True, help="Vendor name or id.")
        parser.add_argument("--since", required=True, help="e.g. 2025-09-01")
        parser.add_argument("--until", required=True, help="e.g. 2025-09-30 (included)")
        parser.add_argument("--csv", action="store_true", help="CSV instead of a table.")

    def handle(self, *args, **options):
        vendor = _vendor(options["vendor"])
        data = QueryDict(mutable=True)
        data["since"], data["until"] = options["since"], options["until"]
        form = CallRecordFilterForm(data)
        if not form.is_valid():
            raise CommandError(
                "; ".join(f"--{name}: {' '.join(errors)}" for name, errors in form.errors.items())
            )
        with database_timeouts_lifted():  # the web's statement timeout is for pings
            statement = vendor_statement(
                vendor=vendor, since=form.cleaned_data["since"], until=form.cleaned_data["until"]
            )
        if options["csv"]:
            self.stdout.write(vendor_statement_csv(statement), ending="")
            return
        self.stdout.write(_table(statement))


def _vendor(value: str) -> Vendor:
    vendor = None
    if value.isascii() and value.isdigit():
        vendor = Vendor.objects.filter(pk=int(value)).first()
    vendor = vendor or Vendor.objects.filter(name__iexact=value).first()
    if vendor is None:
        raise CommandError(f"--vendor: no vendor is named {value!r}.")
    return vendor


def _table(statement) -> str:
    reasons = [reason for reason in REASONS if statement.total.by_reason.get(reason.value)]
    header = [
        "day", "pings", "reserved", "calls", "billable", "not billable", "pending",
        *(f"no: {reason.value}" for reason in reasons), "payout",
    ]  # fmt: skip
    lines = []
    for row in [*statement.days, statement.total]:
        lines.append(
            [
                row.label,
                *(str(value) for value in (row.pings, row.reserved, row.calls, row.billable)),
                str(row.not_billable),
                str(row.pending),
                *(str(row.by_reason.get(reason.value, 0)) for reason in reasons),
                row.payout_text,
            ]
        )
    widths = [max(len(line[i]) for line in [header, *lines]) for i in range(len(header))]

    def render(cells: list[str]) -> str:
        return "  ".join(
            cell.ljust(width) if index == 0 else cell.rjust(width)
            for index, (cell, width) in enumerate(zip(cells, widths, strict=True))
        )

    title = (
        f"Statement for {statement.vendor.name}, {statement.since:%Y-%m-%d %H:%M} to "
        f"{statement.until:%Y-%m-%d %H:%M} UTC (end excluded)"
    )
    rule = "-" * len(render(header))
    body = [render(line) for line in lines]
    if not statement.days:
        body = ["No call records for this vendor in this period.", *body[-1:]]
    return "\n".join([title, render(header), rule, *body[:-1], rule, body[-1]])
