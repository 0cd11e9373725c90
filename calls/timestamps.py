"""Moments as the contract and the exports write them: UTC, ISO-8601, milliseconds and Z.

In Python for the ping's answers and the Python writers, and in SQL for PostgreSQL's COPY, side
by side so the two cannot drift apart.
"""

from datetime import UTC, datetime

from django.db.models import Func, TextField


def format_timestamp(moment: datetime) -> str:
    """UTC, ISO-8601 with milliseconds and Z, as the guide shows."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


class UtcTimestamp(Func):
    """`format_timestamp` in SQL (PostgreSQL)."""

    template = "to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
    output_field = TextField()
