"""A Django process whose analysts' reads may go to a replica, driven line by line from a test.

Run with DATABASE_URL (the primary) and DATABASE_REPLICA_URL set. Each line of standard input is
a command; each answer one line of JSON on standard output:
- `add`: a call record written (on the primary, as pings write).
- `read <max lag seconds>`: the analyst's export as JSON Lines through the export service, with
  that lag bound: the database it read and the rows it got, or the error it raised.
"""

import json
import os
import sys

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.utils import timezone  # noqa: E402

from calls.exports.forms import CallRecordFilters  # noqa: E402
from calls.exports.jobs import call_export_stream  # noqa: E402
from calls.models import CallRecord  # noqa: E402
from config.database import analytics_db  # noqa: E402
from vendors.models import Vendor  # noqa: E402


def main() -> None:
    analyst, _ = User.objects.get_or_create(username="replica-analyst", is_superuser=True)
    vendor = Vendor.objects.order_by("id")[0]
    for line in sys.stdin:
        command, *arguments = line.split()
        if command == "add":
            CallRecord.objects.create(
                vendor=vendor, phone_number="+14805550100", state="AZ",
                state_source=CallRecord.StateSource.AREA_CODE,
                outcome=CallRecord.Outcome.NO_AGENT, received_at=timezone.now(),
            )  # fmt: skip
            answer: dict = {"ok": True}
        elif command == "read":
            settings.DATABASE_REPLICA_MAX_LAG_SECONDS = int(arguments[0])
            answer = {"database": analytics_db()}
            try:
                stream = call_export_stream(
                    user=analyst, filters=CallRecordFilters(), export_format="jsonl",
                    source="command",
                )  # fmt: skip
                answer["rows"] = sum(str(chunk).count("\n") for chunk in stream.chunks)
            except Exception as exc:  # the test asserts there is none
                answer["error"] = repr(exc)
        else:
            answer = {"error": f"unknown command {command!r}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
