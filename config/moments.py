"""How staff pages write a moment: one way everywhere, with the zone (config/formats)."""

from django.utils import timezone
from django.utils.formats import date_format


def moment_text(moment) -> str:
    """A moment as the admin writes it everywhere: date, time and zone (config/formats)."""
    if moment is None:
        return "—"
    return date_format(timezone.localtime(moment), "DATETIME_FORMAT")


def time_of_day(moment) -> str:
    """The time of a moment of today, with the zone."""
    if moment is None:
        return "—"
    return date_format(timezone.localtime(moment), "TIME_FORMAT")
