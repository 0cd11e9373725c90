"""The operator's do-not-call list as staff keep it: add numbers (one, a paste, a CSV file),
find them, remove them. Every addition and removal is written to DoNotCallChange (who, when,
why), which outlives the number's row.

Numbers follow the callers' NANP rule (routing.geography.normalize_us_phone), so a listed number
is the very string a ping's caller is compared with. A paste or a file is all or nothing: any bad
line refuses the whole of it, each bad line named with its line number and why. A number already
listed, or given twice, is not a mistake: it is kept as it was, and said so.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from config.errors import ApplicationError
from routing.geography import InvalidPhoneNumber, normalize_us_phone
from routing.models import DoNotCallChange, DoNotCallNumber

# A file larger than this is refused before it is read: split it.
UPLOAD_MOST_BYTES = 5 * 1024 * 1024
UPLOAD_MOST_LINES = 100_000
# A refusal names at most this many lines, then says how many more were bad.
PROBLEMS_SHOWN = 50
# The file's header may name the number's column with any of these (any case).
NUMBER_HEADERS = frozenset({"number", "phone", "phone_number", "phonenumber", "phone number"})
SOURCE_MOST_CHARACTERS = DoNotCallNumber._meta.get_field("source").max_length or 100
REASON_MOST_CHARACTERS = DoNotCallNumber._meta.get_field("reason").max_length or 200
# Rows per query when looking up or writing many numbers.
CHUNK = 2_000


class DoNotCallInvalid(ApplicationError):
    """Numbers that cannot be added or removed; `problems` names each (by line, for a file)."""

    status = 400

    def __init__(self, problems: list[str]):
        shown = problems[:PROBLEMS_SHOWN]
        if len(problems) > PROBLEMS_SHOWN:
            shown.append(f"… and {len(problems) - PROBLEMS_SHOWN} more lines like these.")
        super().__init__("; ".join(shown))
        self.problems = shown


@dataclass(frozen=True)
class DoNotCallEntry:
    """A number to list, with its line (1-based) in what staff gave, and its own source and
    reason when the file had them (empty: the form's)."""

    line: int
    number: str
    source: str = ""
    reason: str = ""


@dataclass
class DoNotCallAdded:
    added: list[str] = field(default_factory=list)
    already_listed: list[str] = field(default_factory=list)
    # Lines that repeat an earlier line's number: (line, number, the earlier line).
    repeated: list[tuple[int, str, int]] = field(default_factory=list)


def _normalized(value: str, line: int, problems: list[str], *, label: str) -> str | None:
    try:
        return normalize_us_phone(value)
    except InvalidPhoneNumber:
        shown = value if len(value) <= 40 else value[:40] + "…"
        problems.append(
            f"{label} {line}: “{shown}” is not a US phone number (10 digits, area code first, "
            "e.g. 480-555-0100 or +14805550100)."
        )
        return None


def do_not_call_read_text(*, text: str) -> list[DoNotCallEntry]:
    """Numbers pasted one a line (or several on a line, separated by commas or semicolons)."""
    entries: list[DoNotCallEntry] = []
    problems: list[str] = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        for part in re.split(r"[,;]", line):
            if not part.strip():
                continue
            number = _normalized(part.strip(), line_number, problems, label="Line")
            if number:
                entries.append(DoNotCallEntry(line=line_number, number=number))
    if problems:
        raise DoNotCallInvalid(problems)
    if not entries:
        raise DoNotCallInvalid(["Give at least one number."])
    return entries


def do_not_call_read_csv(*, data: bytes, limited: bool = True) -> list[DoNotCallEntry]:
    """A CSV file's numbers: columns number, source, reason (the last two optional), with or
    without a header row naming them, separated by commas (or semicolons or tabs). Every bad
    line is named; any refuses the file. `limited`: at most UPLOAD_MOST_BYTES and
    UPLOAD_MOST_LINES, as a web request can take (the command reads any size)."""
    if limited and len(data) > UPLOAD_MOST_BYTES:
        raise DoNotCallInvalid(
            [f"The file is larger than {UPLOAD_MOST_BYTES // (1024 * 1024)} MB: split it."]
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DoNotCallInvalid(
            [f"Line {line}: not UTF-8 text. Save the file as “CSV UTF-8” and upload it again."]
        ) from None
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise DoNotCallInvalid([f"Line {line}: a NUL character; this is not a CSV file."])
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text))
    columns = {"number": 0, "source": 1, "reason": 2}
    entries: list[DoNotCallEntry] = []
    problems: list[str] = []
    try:
        for row in reader:
            line = reader.line_num
            if limited and line > UPLOAD_MOST_LINES:
                raise DoNotCallInvalid(
                    [f"The file has more than {UPLOAD_MOST_LINES:,} lines: split it."]
                )
            cells = [cell.strip() for cell in row]
            if not any(cells):
                continue
            if not entries and not problems and _is_header(cells):
                columns = _header_columns(cells)
                continue
            entry = _csv_entry(cells, line, columns, problems)
            if entry:
                entries.append(entry)
    except csv.Error as exc:
        problems.append(f"Line {reader.line_num}: not readable as CSV ({exc}).")
    if problems:
        raise DoNotCallInvalid(problems)
    if not entries:
        raise DoNotCallInvalid(["The file has no numbers."])
    return entries


def _delimiter(text: str) -> str:
    """Commas, unless the first line has none and semicolons or tabs instead (spreadsheets set to
    some languages save "CSV" with semicolons)."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    if "," not in first:
        for other in (";", "\t"):
            if other in first:
                return other
    return ","


def _is_header(cells: list[str]) -> bool:
    return any(cell.lower() in NUMBER_HEADERS for cell in cells)


def _header_columns(cells: list[str]) -> dict[str, int]:
    names = [cell.lower() for cell in cells]
    columns = {"number": next(i for i, name in enumerate(names) if name in NUMBER_HEADERS)}
    for name in ("source", "reason"):
        if name in names:
            columns[name] = names.index(name)
    return columns


def _csv_entry(
    cells: list[str], line: int, columns: dict[str, int], problems: list[str]
) -> DoNotCallEntry | None:
    def cell(name: str) -> str:
        index = columns.get(name)
        return cells[index] if index is not None and index < len(cells) else ""

    if not cell("number"):
        problems.append(f"Line {line}: no number in the number column.")
        return None
    number = _normalized(cell("number"), line, problems, label="Line")
    source, reason = cell("source"), cell("reason")
    for name, text, most in (
        ("source", source, SOURCE_MOST_CHARACTERS),
        ("reason", reason, REASON_MOST_CHARACTERS),
    ):
        if len(text) > most:
            problems.append(f"Line {line}: the {name} is longer than {most} characters.")
            return None
    if number is None:
        return None
    return DoNotCallEntry(line=line, number=number, source=source, reason=reason)


def do_not_call_add(
    *,
    entries: Iterable[DoNotCallEntry],
    source: str,
    reason: str,
    actor,
    detail: str,
    now: datetime | None = None,
) -> DoNotCallAdded:
    """List the entries' numbers (an entry's own source and reason, else these), all at once.

    A number already listed keeps its row (its first source and reason); a number repeated in
    the entries is listed once, from its first line. `detail` says how (e.g. the file's name).
    """
    now = now or timezone.now()
    result = DoNotCallAdded()
    first_line: dict[str, int] = {}
    wanted: list[DoNotCallEntry] = []
    for entry in entries:
        if entry.number in first_line:
            result.repeated.append((entry.line, entry.number, first_line[entry.number]))
            continue
        first_line[entry.number] = entry.line
        wanted.append(entry)
    numbers = [entry.number for entry in wanted]
    listed = set()
    for start in range(0, len(numbers), CHUNK):
        chunk = numbers[start : start + CHUNK]
        listed |= set(
            DoNotCallNumber.objects.filter(number__in=chunk).values_list("number", flat=True)
        )
    result.already_listed = [number for number in numbers if number in listed]
    rows = [
        DoNotCallNumber(
            number=entry.number,
            source=entry.source or source,
            reason=entry.reason or reason,
            added_by=actor,
            added_at=now,
        )
        for entry in wanted
        if entry.number not in listed
    ]
    try:
        with transaction.atomic():
            DoNotCallNumber.objects.bulk_create(rows, batch_size=CHUNK)
            DoNotCallChange.objects.bulk_create(
                [
                    DoNotCallChange(
                        number=row.number,
                        action=DoNotCallChange.Action.ADDED,
                        source=row.source,
                        reason=row.reason,
                        actor=actor,
                        at=now,
                        detail=detail[:200],
                    )
                    for row in rows
                ],
                batch_size=CHUNK,
            )
    except IntegrityError:
        # Someone listed one of them since the look-up above: all or nothing still.
        raise DoNotCallInvalid(
            ["Some of these numbers were listed by someone else meanwhile: add them again."]
        ) from None
    result.added = [row.number for row in rows]
    return result


def do_not_call_remove(
    *, number_ids: Iterable[int], reason: str, actor, now: datetime | None = None
) -> list[str]:
    """Take numbers off the list, saying why; each removal is kept in the audit with who and
    when. Returns the numbers removed (a number someone else removed meanwhile is skipped)."""
    reason = reason.strip()
    if not reason:
        raise DoNotCallInvalid(["Say why the numbers come off the list: the audit keeps it."])
    if len(reason) > REASON_MOST_CHARACTERS:
        raise DoNotCallInvalid([f"Give the reason in at most {REASON_MOST_CHARACTERS} characters."])
    now = now or timezone.now()
    with transaction.atomic():
        rows = list(
            DoNotCallNumber.objects.select_for_update()
            .filter(pk__in=list(number_ids))
            .order_by("pk")
        )
        DoNotCallChange.objects.bulk_create(
            [
                DoNotCallChange(
                    number=row.number,
                    action=DoNotCallChange.Action.REMOVED,
                    source=row.source,
                    reason=reason,
                    actor=actor,
                    at=now,
                    detail=_listed_as(row)[:200],
                )
                for row in rows
            ]
        )
        DoNotCallNumber.objects.filter(pk__in=[row.pk for row in rows]).delete()
    return [row.number for row in rows]


def _listed_as(row: DoNotCallNumber) -> str:
    listed = f"Listed {row.added_at:%Y-%m-%d}"
    return f"{listed}: {row.reason}" if row.reason else listed


def do_not_call_match(*, term: str) -> Q:
    """What a search finds: the number in any NANP spelling, exactly (the unique index), or
    text in the source or reason."""
    term = term.strip()
    try:
        return Q(number=normalize_us_phone(term))
    except InvalidPhoneNumber:
        return Q(source__icontains=term) | Q(reason__icontains=term)


def do_not_call_history(*, number: str) -> QuerySet[DoNotCallChange]:
    """Every addition and removal of a number, latest first."""
    return DoNotCallChange.objects.filter(number=number).select_related("actor").order_by("-at")
