"""Audit: reservations that held one agent or one transfer number at the same time.

A reservation holds from `created_at` until it ended (`ended_at`) or, if it never did, its
`expires_at`. Any overlap is a double booking; the answer must always be 0.
"""

from django.core.management.base import BaseCommand
from django.db import connection

OVERLAPS_SQL = """
SELECT count(*) FROM routing_reservation a
JOIN routing_reservation b
  ON b.{column} = a.{column} AND b.id > a.id
 AND a.created_at < COALESCE(b.ended_at, b.expires_at)
 AND b.created_at < COALESCE(a.ended_at, a.expires_at)
"""


def reservation_overlap_count() -> int:
    total = 0
    with connection.cursor() as cursor:
        for column in ("agent_id", "transfer_number_id"):
            cursor.execute(OVERLAPS_SQL.format(column=column))
            total += cursor.fetchone()[0]
    return total


class Command(BaseCommand):
    help = "Print the number of overlapping reservations of one agent or number (must be 0)."

    def handle(self, *args, **options):
        self.stdout.write(str(reservation_overlap_count()))
